"""The request and response values the handlers see, over raw ASGI (no framework on the hot path)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from rerum_server.errors import PayloadTooLarge

Headers = list[tuple[str, str]]
DRAIN_LIMIT = 64 * 1024 * 1024  # bytes of a refused body read and discarded before answering 413


@dataclass
class Request:
    """One HTTP request: method, path (as routed), query, headers, and the parsed body."""

    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: Any = None  # parsed JSON (dict/list), text (str), or None when there was no parseable body
    body_kind: str | None = None  # "json", "text" or None
    params: dict[str, str] = field(default_factory=dict)
    route: str = ""  # the matched route's template (a metrics label), set by the pipeline
    request_id: str = ""  # sanitised X-Request-Id, or a generated one
    agent: str | None = None  # the authenticated agent, once a handler has verified a token

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def query(self, name: str) -> str | None:
        """The first value of a query parameter (Node's parser makes repeats a list; the first wins)."""
        for key, value in parse_qsl(self.query_string, keep_blank_values=True):
            if key == name:
                return value
        return None


@dataclass
class Response:
    """A complete response; ``body`` is sent as is and ``Content-Length`` is derived from it."""

    status: int = 200
    body: bytes = b""
    headers: Headers = field(default_factory=list)
    content_type: str | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


def header_map(scope: dict[str, Any]) -> dict[str, str]:
    """Request headers by lower-case name; repeated headers joined by ", " as Node does."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def has_body(headers: dict[str, str]) -> bool:
    """Whether the request declares a body (a length other than 0, or a chunked transfer)."""
    length = headers.get("content-length")
    return (length is not None and length.strip() != "0") or "transfer-encoding" in headers


async def discard_body(receive: Any) -> None:
    """Read a body the server does not use to its end (up to ``DRAIN_LIMIT`` bytes) and drop it.

    Answering while the client is still sending makes the server close a connection with unread
    data: under load most such clients saw a reset instead of the answer.
    """
    size = 0
    while size <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return
        size += len(message.get("body", b""))


async def read_body(receive: Any, limit: int, declared_length: str | None) -> bytes:
    """The whole request body, or 413 when it exceeds ``limit`` bytes.

    A too-large body is still read to its end (and discarded), as the reference's body parser does:
    answering while the client is still sending makes the server close a connection with unread
    data, and the client then often sees a reset instead of the 413. Beyond ``DRAIN_LIMIT`` bytes
    the server stops reading and lets the connection close.
    """
    too_large = declared_length is not None and declared_length.isdigit() and int(declared_length) > limit
    chunks: list[bytes] = []
    size = 0
    while size <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        too_large = too_large or size > limit
        if not too_large:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if too_large:
        raise PayloadTooLarge()
    return b"".join(chunks)

"""Answers: a read's response body plus the headers that depend on the data, pure.

A whole answer is a value, so a cache can store it and a hit rebuilds the same bytes and headers
as a miss; the web layer adds only what depends on the request (ETag, 304, CORS, worker, X-Cache).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from rerum_server.versioning.metadata import Document, is_deleted, negotiate, outbound_id

JSON = "application/json; charset=utf-8"
JSON_LD = 'application/ld+json; charset=utf-8; profile="http://www.w3.org/ns/anno.jsonld"'
LD_CONTEXT_LINK = (
    '<http://store.rerum.io/v1/context.json>; rel="http://www.w3.org/ns/json-ld#context"; '
    'type="application/ld+json"'
)
RESOURCE_LINK = '<http://www.w3.org/ns/ldp#Resource>; rel="type"'
CONTAINER_LINK = 'application/ld+json;charset=utf-8;profile="http://www.w3.org/ns/anno.jsonld"'
CONTAINER_TYPES = (
    "ItemList",
    "AnnotationPage",
    "AnnotationList",
    "AnnotationCollection",
    "Sequence",
    "Range",
    "Canvas",
    "List",
    "Set",
    "Collection",
)


@dataclass(frozen=True)
class Answer:
    """A read's outcome: body bytes and the data-dependent headers, or the message of a 404."""

    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = field(default=())
    not_found: str | None = None
    cacheable: bool = True


def not_found(message: str) -> Answer:
    """A 404 as an answer, so that "no such object" can be cached like any other answer."""
    return Answer(b"", "", (), not_found=message)


def _is_container(doc: Document) -> bool:
    kind = doc.get("@type", doc.get("type"))
    if isinstance(kind, str):
        return any(name in kind for name in CONTAINER_TYPES)
    if isinstance(kind, list):
        return any(item in CONTAINER_TYPES for item in kind)
    return False  # the reference crashed with 500 on numbers and objects


def last_modified(doc: Document) -> str | None:
    """RFC 1123 date of the last change, read as UTC (the reference used the host's local zone)."""
    if is_deleted(doc):
        stamp = doc["__deleted"].get("time")
    else:
        rerum = doc.get("__rerum") or {}
        stamp = rerum.get("isOverwritten") or rerum.get("createdAt")
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.strptime(stamp.split(".", 1)[0], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


def object_answer(doc: Document, id_prefix: str, *, extra: Document | None = None) -> Answer:
    """The single-object response of GET id and of every mutation (``extra`` adds ``new_obj_state``)."""
    out = negotiate(doc, id_prefix)
    body = out if extra is None else out | extra
    headers = [
        ("Link", CONTAINER_LINK if _is_container(doc) else RESOURCE_LINK),
        ("Allow", "GET,OPTIONS,HEAD,PUT,PATCH,DELETE,POST"),
    ]
    location = outbound_id(doc, id_prefix)
    if location is not None:
        headers.append(("Location", location))
    return Answer(orjson.dumps(body), JSON_LD if doc.get("@context") else JSON, tuple(headers))


def list_answer(docs: list[Document], id_prefix: str) -> Answer:
    """An array response with RERUM's "LD headers" (query, since, history, search)."""
    return ld_answer([negotiate(doc, id_prefix) for doc in docs])


def ld_answer(items: list[Document]) -> Answer:
    """An array of already negotiated documents with RERUM's "LD headers"."""
    body = orjson.dumps(items)
    return Answer(
        body, JSON_LD, (("Allow", "GET,OPTIONS,HEAD,PUT,PATCH,DELETE,POST"), ("Link", LD_CONTEXT_LINK))
    )

"""Request bodies: RERUM's global body parsing (before auth) and the per-route 415 table (after auth)."""

from __future__ import annotations

import re
from typing import Any

import orjson

from rerum_server import errors
from rerum_server.web.http import Request

JSON_LIMIT = 5 * 1024 * 1024
TEXT_LIMIT = 4 * 1024
# Levels of objects and arrays in one document, the document itself being level 1 (MongoDB's limit,
# so the reference stores no deeper documents either). The lowest limit below it is orjson's encoder
# (254 levels); the server wraps a stored document in at most three more (`__deleted.object` of a
# delete shell, inside the array of a query or history answer). PostgreSQL's jsonb, jsonpath and the
# search text handle over 8,000 levels, orjson's parser 1,024, the cache stamp walk about 990.
MAX_DOCUMENT_DEPTH = 100
TOO_DEEP = (
    f"A document may nest objects and arrays at most {MAX_DOCUMENT_DEPTH} levels deep "
    "(the document itself is level 1)."
)
_JSON_TYPES = ("application/json", "application/ld+json")
_CHARSET = re.compile(r"(?:^|;)\s*charset\s*=\s*\"?([^\";]*)\"?", re.IGNORECASE)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def body_limit(content_type: str | None) -> int | None:
    """How many bytes the global parsers accept for this content type (None: the body is not read)."""
    kind = media_type(content_type)
    if kind in _JSON_TYPES:
        return JSON_LIMIT
    if kind == "text/plain":
        return TEXT_LIMIT
    return None


def _charset(content_type: str) -> str | None:
    match = _CHARSET.search(content_type)
    return match.group(1).strip().lower() if match else None


def parse_body(request: Request, raw: bytes) -> None:
    """Parse ``raw`` as RERUM's global parsers do: JSON (object or array only) or text/plain."""
    content_type = request.header("content-type") or ""
    kind = media_type(content_type)
    charset = _charset(content_type)
    if charset is not None and not charset.startswith("utf-"):
        raise errors.UnsupportedMediaType(f'unsupported charset "{charset.upper()}"')
    if kind in _JSON_TYPES:
        request.body_kind = "json"
        if not raw.strip():
            request.body = {}
            return
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise errors.BadRequest(f"{exc.msg} in JSON at position {exc.pos}") from exc
        if not isinstance(value, dict | list):
            raise errors.BadRequest("The JSON body must be an object or an array.")
        if b"\\u0000" in raw and _has_nul(value):
            raise errors.BadRequest("The JSON body contains the character U+0000, which cannot be stored.")
        if raw.count(b"[") + raw.count(b"{") > MAX_DOCUMENT_DEPTH and _too_deep(value):
            raise errors.BadRequest(TOO_DEEP)
        request.body = value
    elif kind == "text/plain":
        request.body_kind = "text"
        try:
            request.body = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.BadRequest("The text body is not valid UTF-8.") from exc


def _too_deep(body: dict[str, Any] | list[Any]) -> bool:
    """Whether a document of the body nests deeper than ``MAX_DOCUMENT_DEPTH``: the body itself, or
    each element of an array body (bulk writes take arrays of documents)."""
    documents = body if isinstance(body, list) else [body]
    stack = [(document, 1) for document in documents if isinstance(document, dict | list)]
    while stack:  # iterative: a body may nest up to orjson's 1,024 levels
        item, level = stack.pop()
        if level > MAX_DOCUMENT_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return False


def _has_nul(value: Any) -> bool:
    """Whether a key or string anywhere in a parsed JSON value holds U+0000 (PostgreSQL rejects it)."""
    stack = [value]
    while stack:  # iterative: JSON may nest deeper than Python's recursion limit
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _smuggled(content_type: str) -> bool:
    """Several media types in one header, or parameters that are not ``name=value``."""
    kind, _, rest = content_type.partition(";")
    if " " in kind.strip() or "," in kind:
        return True
    if not _:
        return False
    for segment in _split_parameters(rest):
        if "=" not in segment:
            return True
        name, _, value = segment.strip().partition("=")
        if " " in name or "," in name:
            return True
        if not (value.startswith('"') and value.endswith('"') and len(value) >= 2) and (
            " " in value or "," in value
        ):
            return True
    return False


def _split_parameters(rest: str) -> list[str]:
    segments, current, quoted = [], [], False
    for char in rest:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    return segments


def require_content_type(request: Request, *, text_allowed: bool = False) -> None:
    """RERUM's 415 rules for routes that take JSON (and, for search, text/plain)."""
    content_type = (request.header("content-type") or "").strip().lower()
    if not content_type:
        raise errors.UnsupportedMediaType("Missing or empty Content-Type header.")
    if _smuggled(content_type):
        raise errors.UnsupportedMediaType(
            "Multiple Content-Type values are not allowed. Provide exactly one Content-Type header."
        )
    allowed = (*_JSON_TYPES, "text/plain") if text_allowed else _JSON_TYPES
    if media_type(content_type) not in allowed:
        accepted = (
            "application/json, application/ld+json, or text/plain"
            if text_allowed
            else "application/json or application/ld+json"
        )
        raise errors.UnsupportedMediaType(
            f"Unsupported Content-Type: {content_type}. This endpoint requires {accepted}."
        )


def json_body(request: Request) -> Any:
    """The parsed JSON body (``{}`` when none was sent), after the 415 check."""
    require_content_type(request)
    return {} if request.body_kind != "json" else request.body


_LEADING_INTEGER = re.compile(r"\s*([+-]?)0*([0-9]+)")  # JavaScript digits are ASCII only


def parse_int(value: str | None, *, ceiling: int) -> int | None:
    """JavaScript ``parseInt(value, 10)``: sign and leading digits after whitespace, else None (NaN).

    A magnitude above ``ceiling`` comes back as ``ceiling + 1``: callers only compare the result with
    their cap, and a digit string of any length must not be converted (Python refuses more than 4,300
    digits, and converting is quadratic in their number).
    """
    match = None if value is None else _LEADING_INTEGER.match(value)
    if match is None:
        return None
    sign, digits = match.groups()
    too_large = len(digits) > len(str(ceiling)) or int(digits) > ceiling
    magnitude = ceiling + 1 if too_large else int(digits)
    return -magnitude if sign == "-" else magnitude


def pagination(request: Request, default_limit: int, max_limit: int, max_skip: int) -> tuple[int, int]:
    """RERUM's ``limit`` and ``skip``: non-positive or unparseable → defaults; clamped to the caps."""
    limit = parse_int(request.query("limit"), ceiling=max_limit)
    skip = parse_int(request.query("skip"), ceiling=max_skip)
    limit = min(default_limit if limit is None or limit <= 0 else limit, max_limit)
    skip = 0 if skip is None or skip <= 0 else min(skip, max_skip)
    return limit, skip


def is_empty_json(value: Any) -> bool:
    """RERUM's emptiness: no own keys (so ``{}`` and ``[]`` are empty, other values are not)."""
    return isinstance(value, dict | list) and len(value) == 0

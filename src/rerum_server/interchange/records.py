"""One exported document (a line of ``mongoexport``) → the row the store keeps, or the reason not, pure."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from rerum_server.interchange.extended_json import ExtendedJsonError, decode_document
from rerum_server.interchange.prefixes import IdRewrite
from rerum_server.versioning.metadata import Document


@dataclass(frozen=True, slots=True)
class Record:
    """A document ready to store: its ``_id`` and its JSON text (``body``, and ``doc`` parsed from it)."""

    id: str
    body: str


class Rejected(ValueError):
    """This document cannot be stored; the message says why (for the import's report)."""


def read_document(raw: bytes, rewrite: IdRewrite | None = None) -> Record:
    """The record of one exported document; raises ``Rejected``.

    The body is the exported text itself when nothing had to change (so number spellings such as the
    exact decimals an earlier export wrote survive a round trip), else the decoded document written as
    the server writes documents.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise Rejected(f"not a JSON object but {type(doc).__name__}")
    try:
        changed = decode_document(doc)
    except ExtendedJsonError as exc:
        raise Rejected(str(exc)) from None
    if rewrite is not None:
        changed |= rewrite.document(doc)
    _check_shape(doc)
    if b"\\u0000" in raw and _has_nul(doc):
        raise Rejected("holds the character U+0000, which PostgreSQL's jsonb cannot store")
    return Record(doc["_id"], encode(doc) if changed else raw.decode().strip())


def encode(doc: Document) -> str:
    """``doc`` as the server writes documents, with decimals in their exact digits."""
    return orjson.dumps(doc, default=_exact).decode()


def _exact(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))  # a finite Decimal's str() is always a JSON number
    raise TypeError(f"{type(value).__name__} is not JSON")


def _check_shape(doc: Document) -> None:
    """What the server relies on when it reads, versions and deletes a stored document."""
    object_id = doc.get("_id")
    if not isinstance(object_id, str) or not object_id or "/" in object_id:
        raise Rejected("has no _id string (a non-empty key without '/')")
    if not isinstance(doc.get("@id"), str):
        raise Rejected("has no @id string")
    if "__deleted" in doc:
        deleted = doc["__deleted"]
        if not isinstance(deleted, dict) or not isinstance(deleted.get("object"), dict):
            raise Rejected("is a deleted shell whose __deleted.object is not an object")
        return
    rerum = doc.get("__rerum")
    if not isinstance(rerum, dict):
        raise Rejected("has neither __rerum nor __deleted: not a RERUM document")
    history = rerum.get("history")
    if not (
        isinstance(history, dict)
        and isinstance(history.get("prime"), str)
        and isinstance(history.get("previous"), str)
        and isinstance(history.get("next"), list)
    ):
        raise Rejected("has no __rerum.history with string prime and previous and a next list")
    slug = rerum.get("slug")
    if slug is not None and not isinstance(slug, str):
        raise Rejected("has a __rerum.slug that is not a string")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False

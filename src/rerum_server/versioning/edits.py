"""Patch, set, unset and overwrite as transformations of a stored document, pure."""

from __future__ import annotations

from typing import Any

from rerum_server import errors
from rerum_server.versioning.metadata import (
    Document,
    content_of,
    is_deleted,
    is_known_id_context,
    is_released,
)
from rerum_server.versioning.ownership import is_generator

_NEVER_EDITED = ("__rerum", "_id", "@id")


def _editable_content(original: Document) -> Document:
    """The original's keys that a patch works on: everything but the identifiers and metadata."""
    return {key: value for key, value in original.items() if key not in _NEVER_EDITED}


def patched(original: Document, body: Document) -> Document | None:
    """Content after ``patch``: existing keys replaced, ``null`` removes; None when nothing applies.

    As in RERUM v1, a key present on the original counts as a change even with an equal value.
    """
    content = _editable_content(original)
    requested = content_of(body) | ({"@context": body["@context"]} if "@context" in body else {})
    applicable = {key: value for key, value in requested.items() if key in content}
    if not applicable:
        return None
    for key, value in applicable.items():
        if value is None:
            del content[key]
        else:
            content[key] = value
    return content


def with_keys_set(original: Document, body: Document) -> Document | None:
    """Content after ``set``: keys the original lacks are added; None when nothing is new."""
    known_context = is_known_id_context(original.get("@context"))
    content = _editable_content(original)
    if known_context:
        content.pop("id", None)
    additions = {
        key: value
        for key, value in body.items()
        if key != "_id" and not (known_context and key == "id") and key not in original
    }
    if not additions:
        return None
    content.update(additions)
    return content


def with_keys_unset(original: Document, body: Document) -> Document | None:
    """Content after ``unset``: keys sent as ``null`` and present on the original are removed."""
    known_context = is_known_id_context(original.get("@context"))
    removals = [
        key
        for key, value in body.items()
        if value is None
        and key not in _NEVER_EDITED
        and not (known_context and key == "id")
        and key in original
    ]
    if not removals:
        return None
    content = _editable_content(original)
    for key in removals:
        del content[key]
    return content


def check_overwritable(original: Document, agent: str, expected_version: Any) -> None:
    """Raise unless ``agent`` may overwrite ``original`` now; ``expected_version`` None means unconditional.

    Runs while the transaction holds the tree's lock, so two overwrites that expect the same
    version cannot both pass (the reference checked and wrote separately).
    """
    if is_deleted(original):
        raise errors.Forbidden("The object you are trying to overwrite is deleted. ")
    if is_released(original):
        raise errors.Forbidden(
            "The object you are trying to overwrite is released.  Fork with /update to make changes. "
        )
    if not is_generator(original, agent):
        raise errors.Unauthorized(
            "You are not the generating agent for this object. "
            "You cannot overwrite it. Fork with /update to make changes. "
        )
    current = original["__rerum"].get("isOverwritten", "")
    if expected_version is not None and expected_version != current:
        raise errors.VersionConflict(original)


def overwritten(original: Document, body: Document, now: str) -> Document:
    """The document after an in-place overwrite: new content, same identity and history."""
    doc: Document = {}
    if "@context" in body:
        doc["@context"] = body["@context"]
    doc["@id"] = original["@id"]
    doc.update(content_of(body))
    rerum = dict(original["__rerum"])
    rerum["isOverwritten"] = now
    doc["__rerum"] = rerum
    doc["_id"] = original["_id"]
    return doc

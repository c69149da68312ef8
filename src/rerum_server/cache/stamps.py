"""Stamps: the names of what a cached read depends on and what a write changes, pure.

A read's entry is valid only while the generations of its stamps are unchanged; a write changes the
generation of every stamp its old and new states name. The rule this module must keep: whenever a
write changes a read's answer, the write's stamps and the read's stamps intersect.

Stamps:
    obj:<_id>        one document (by id)
    slug:<slug>      one slug (a GET by slug, or a 404 for a name not yet taken)
    tree:<root _id>  one version tree (/history, /since)
    eq:<digest>      documents with a leaf (path, scalar) — selective invalidation of queries
    q                every query (bumped by writes whose documents are too large to list their leaves)
    qx               queries without an equality condition (bumped by every write)
    s                every search (bumped by every write)
    all              every entry (bumped by /v1/api/cache/clear)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from rerum_server.versioning.change import Change
from rerum_server.versioning.history import tree_root_id
from rerum_server.versioning.metadata import Document

ALL = "all"
ALL_QUERIES = "q"
UNSELECTIVE_QUERIES = "qx"
SEARCHES = "s"
MAX_LEAF_DEPTH = 4
MAX_LEAF_STAMPS = 128
_MAX_SCALAR_LENGTH = 512


def object_stamps(key: str) -> list[str]:
    """What ``GET /v1/id/{key}`` depends on: the document with that id or that slug."""
    return [f"obj:{key}", f"slug:{key}"]


def tree_stamps(key: str, root_id: str | None) -> list[str]:
    """What ``/history`` and ``/since`` of ``key`` depend on: the object and its whole tree."""
    return object_stamps(key) + ([f"tree:{root_id}"] if root_id else [])


def scalar_token(value: Any) -> str | None:
    """A canonical text for a scalar that MongoDB equality distinguishes (5 == 5.0, True != 1)."""
    if isinstance(value, bool):
        return "b:" + ("true" if value else "false")
    if isinstance(value, int):
        return f"n:{value}"
    if isinstance(value, float):
        return f"n:{int(value)}" if value.is_integer() and abs(value) < 2**63 else f"n:{value!r}"
    if isinstance(value, str) and len(value) <= _MAX_SCALAR_LENGTH:
        return "s:" + value
    return None


def equality_stamp(path: str, value: Any) -> str | None:
    """The stamp of documents having ``value`` at ``path`` (array levels skipped), or None if not stampable."""
    token = scalar_token(value)
    if token is None or path.count(".") >= MAX_LEAF_DEPTH:
        return None
    digest = hashlib.blake2b(f"{path}\0{token}".encode(), digest_size=12).hexdigest()
    return f"eq:{digest}"


def _leaves(value: Any, path: str, depth: int) -> Iterator[tuple[str, Any]]:
    """Every (path, scalar) of a document, descending into arrays at any level without naming them."""
    if isinstance(value, dict):
        if depth >= MAX_LEAF_DEPTH:
            return
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, path, depth)
    elif path:
        yield path, value


def document_query_stamps(doc: Document) -> set[str] | None:
    """The equality stamps of one document state, or None when it has too many to list."""
    stamps: set[str] = set()
    for path, value in _leaves(doc, "", 0):
        stamp = equality_stamp(path, value)
        if stamp is not None:
            stamps.add(stamp)
            if len(stamps) > MAX_LEAF_STAMPS:
                return None
    return stamps


def _document_stamps(doc: Document) -> set[str]:
    stamps = {f"obj:{doc['_id']}"}
    slug = (doc.get("__rerum") or {}).get("slug")
    if isinstance(slug, str):
        stamps.add(f"slug:{slug}")
    root = tree_root_id(doc)
    if root is not None:
        stamps.add(f"tree:{root}")
    return stamps


def write_stamps(change: Change) -> list[str]:
    """Every stamp a write changes: from the old and the new state of each document it touched.

    Both states matter: a document can leave a query's result as well as enter it, and a delete or a
    re-rooting moves documents between trees.
    """
    stamps = {UNSELECTIVE_QUERIES, SEARCHES}
    states = list(change.inserted) + [state for pair in change.replaced for state in pair]
    selective: set[str] | None = set()
    for state in states:
        stamps |= _document_stamps(state)
        if selective is not None:
            leaves = document_query_stamps(state)
            selective = (
                None
                if leaves is None or len(selective) + len(leaves) > MAX_LEAF_STAMPS * 4
                else selective | leaves
            )
    stamps |= {ALL_QUERIES} if selective is None else selective
    return sorted(stamps)

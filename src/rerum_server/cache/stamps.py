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
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import orjson

from rerum_server.versioning.change import Change
from rerum_server.versioning.history import tree_root_id
from rerum_server.versioning.metadata import Document

ALL = "all"
ALL_QUERIES = "q"
UNSELECTIVE_QUERIES = "qx"
SEARCHES = "s"
MAX_LEAF_DEPTH = 4
MAX_LEAF_STAMPS = 128
# A write naming more stamps than this (a bulk write of hundreds of documents) changes ``all`` instead:
# every script stays O(this), so one request can neither outlast the Redis timeout (which would
# refuse other requests' writes during the backoff) nor stall Redis for every other worker.
MAX_WRITE_STAMPS = 1024
_MAX_SCALAR_LENGTH = 512


def object_stamps(key: str) -> list[str]:
    """What ``GET /v1/id/{key}`` depends on: the document with that id or that slug."""
    return [f"obj:{key}", f"slug:{key}"]


def tree_stamps(key: str, root_id: str | None) -> list[str]:
    """What ``/history`` and ``/since`` of ``key`` depend on: the object and its whole tree."""
    return object_stamps(key) + ([f"tree:{root_id}"] if root_id else [])


def number_token(value: int | float) -> str:
    """The number as PostgreSQL's ``jsonb`` compares it: the exact decimal of the text the server sends.

    Documents reach PostgreSQL as orjson's text and query values as ``json``'s; for a float both write
    the shortest decimal that reads back as the same double (``tests/unit/test_stamps.py`` holds them
    to it), and PostgreSQL compares that decimal, not the double's binary value: ``2.0**60`` arrives as
    ``1.152921504606847e+18`` and equals ``1152921504606847000``. Integers arrive digit for digit.
    The token is sign, significant digits and exponent, so every spelling of one decimal (``5``,
    ``5.0``, ``5e0``, ``-0.0`` and ``0``) gets one token.
    """
    sign, digit_tuple, exponent = Decimal(value if isinstance(value, int) else repr(value)).as_tuple()
    assert isinstance(exponent, int)  # finite: the body parsers refuse NaN and infinities
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    if not digits:
        return "n:0"
    significant = digits.rstrip("0")
    return f"n:{'-' if sign else ''}{significant}e{exponent + len(digits) - len(significant)}"


def scalar_token(value: Any) -> str | None:
    """A canonical text for a scalar: equal for values PostgreSQL's jsonb holds equal, else different."""
    if isinstance(value, bool):
        return "b:" + ("true" if value else "false")
    if isinstance(value, int | float):
        return number_token(value)
    if isinstance(value, str) and len(value) <= _MAX_SCALAR_LENGTH:
        return "s:" + value
    return None


def equality_stamp(path: Sequence[str], value: Any) -> str | None:
    """The stamp of documents having ``value`` at the object path ``path`` (array levels not named),
    or None if not stampable. ``path`` is a sequence of keys, so ``("",)`` and ``()`` differ."""
    token = scalar_token(value)
    if token is None or len(path) > MAX_LEAF_DEPTH:
        return None
    digest = hashlib.blake2b(orjson.dumps([list(path), token]), digest_size=12).hexdigest()
    return f"eq:{digest}"


def _leaves(doc: Document) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (object path, scalar) of a document, descending into arrays at any level without naming
    them (MongoDB's implicit array traversal), objects up to ``MAX_LEAF_DEPTH`` keys deep."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), doc)]
    while stack:  # iterative: arrays may nest deeper than Python's recursion limit
        path, value = stack.pop()
        if isinstance(value, dict):
            if len(path) < MAX_LEAF_DEPTH:
                stack.extend(((*path, key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((path, item) for item in value)
        elif path:
            yield path, value


def document_query_stamps(doc: Document) -> set[str] | None:
    """The equality stamps of one document state, or None when it has too many to list."""
    stamps: set[str] = set()
    for path, value in _leaves(doc):
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
    re-rooting moves documents between trees. Beyond ``MAX_WRITE_STAMPS`` the write changes ``all``,
    on which every entry depends.
    """
    stamps = {UNSELECTIVE_QUERIES, SEARCHES}
    states = list(change.inserted) + [state for pair in change.replaced for state in pair]
    selective: set[str] | None = set()
    for state in states:
        stamps |= _document_stamps(state)
        if len(stamps) > MAX_WRITE_STAMPS:
            return [ALL]
        if selective is not None:
            leaves = document_query_stamps(state)
            selective = (
                None
                if leaves is None or len(selective) + len(leaves) > MAX_LEAF_STAMPS * 4
                else selective | leaves
            )
    stamps |= {ALL_QUERIES} if selective is None else selective
    return sorted(stamps) if len(stamps) <= MAX_WRITE_STAMPS else [ALL]

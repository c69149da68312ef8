"""RERUM collections as mongoexport writes them, built with pymongo's own ``bson.json_util``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import Decimal128, Int64, ObjectId, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, RELAXED_JSON_OPTIONS

OLD_PREFIX = "https://store.rerum.io/v1/id/"
AGENT = "https://store.rerum.io/v1/id/agent000000000000000000a"
_EPOCH = datetime(2021, 3, 1, tzinfo=UTC)


def _oid(n: int) -> ObjectId:
    return ObjectId(f"{0x6040000000000000 + n:024x}")


def _rerum(n: int, history: dict[str, Any], **extra: Any) -> dict[str, Any]:
    rerum: dict[str, Any] = {
        "@context": "https://store.rerum.io/v1/context.json",
        "alpha": True,
        "APIversion": "1.1.0",
        # Older RERUM documents hold BSON dates; newer ones RERUM's own text.
        "createdAt": _EPOCH + timedelta(seconds=n, milliseconds=n % 1000)
        if n % 2
        else (_EPOCH + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.000"),
        "isOverwritten": "",
        "isReleased": "",
        "history": history,
        "releases": {"previous": "", "next": [], "replaces": ""},
        "generatedBy": AGENT,
    }
    rerum.update(extra)
    return rerum


def tree(first: int) -> list[dict[str, Any]]:
    """A RERUM version tree of four objects: root A, B (update of A, released, with a slug),
    C (update of B), and D (an update of A, then deleted: a shell). ``_id`` is an ObjectId for A and C,
    a string for B and D, as collections that went through several RERUM versions hold them."""
    ids = [_oid(first + k) for k in range(4)]
    uri = [OLD_PREFIX + str(i) for i in ids]
    body = {"type": "Annotation", "motivation": "commenting", "target": f"https://example.org/canvas/{first}"}

    def doc(k: int, rerum: dict[str, Any], **content: Any) -> dict[str, Any]:
        object_id: Any = ids[k] if k in (0, 2) else str(ids[k])
        return {
            "@context": "http://www.w3.org/ns/anno.jsonld",
            "@id": uri[k],
            **body,
            **content,
            "__rerum": rerum,
            "_id": object_id,
        }

    a = doc(
        0,
        _rerum(first, {"prime": "root", "previous": "", "next": [uri[1]]}),
        body={"value": "first", "count": Int64(2**40 + first), "price": Decimal128("12.50")},
    )
    b = doc(
        1,
        _rerum(
            first + 1,
            {"prime": uri[0], "previous": uri[0], "next": [uri[2]]},
            isReleased=(_EPOCH + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000"),
            slug=f"slug-{first}",
        ),
        body={"value": "second", "ratio": 0.1 + first, "nothing": None},
    )
    b["__rerum"]["releases"] = {"previous": "", "next": [], "replaces": ""}
    c = doc(
        2,
        _rerum(
            first + 2,
            {"prime": uri[0], "previous": uri[1], "next": []},
            releases={"previous": uri[1], "next": [], "replaces": ""},
        ),
        body={"value": "third — ü", "tags": ["x", {"deep": [1, 2.5, -0.0]}]},
    )
    d_original = doc(
        3, _rerum(first + 3, {"prime": uri[0], "previous": uri[0], "next": []}), body={"value": "branch"}
    )
    d_original["_id"] = str(ids[3])
    d = {
        "@id": uri[3],
        "__deleted": {"object": d_original, "deletor": AGENT, "time": _EPOCH + timedelta(days=2)},
        "_id": str(ids[3]),
    }  # fmt: skip
    return [a, b, c, d]


def collection(trees: int) -> list[dict[str, Any]]:
    """``trees`` version trees, in insertion order (a tree's root before its versions)."""
    return [document for n in range(trees) for document in tree(n * 4)]


def lines(documents: list[dict[str, Any]], *, canonical: bool) -> list[str]:
    """The documents as ``mongoexport`` lines, in canonical or relaxed Extended JSON v2."""
    options = CANONICAL_JSON_OPTIONS if canonical else RELAXED_JSON_OPTIONS
    return [json_util.dumps(document, json_options=options) for document in documents]


def ids_of(documents: list[dict[str, Any]]) -> list[str]:
    return [str(document["_id"]) for document in documents]

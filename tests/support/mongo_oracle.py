"""Both sides of the query differential test: MongoDB semantics (mongomock) and our SQL on real PostgreSQL.

``MongoOracle`` is mongomock 4.3 with a short list of corrections where mongomock is known to differ from a
real MongoDB server. Each correction is either

* a *rewrite* of the filter into a form that means the same to a real MongoDB server and that mongomock
  evaluates correctly (e.g. ``{a: {$ne: v}}`` → ``{$nor: [{a: v}]}``), or
* a *patch* of one mongomock matching primitive, active only while the oracle runs,

and each is listed in docs/query.md ("The oracle") with the test that pins the real-MongoDB behaviour.
``QueryDatabase`` runs compiled filters against a real ``rerum_objects`` table.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import mongomock
from mongomock import filtering

from rerum_server.query import compile_filter, parse_filter
from rerum_server.query.parse import LOGICAL_OPERATORS, TYPE_CODES
from rerum_server.store.documents import encode
from rerum_server.store.migrate import migrate

GIN_INDEX_DDL = "CREATE INDEX IF NOT EXISTS rerum_objects_doc ON rerum_objects USING gin (doc jsonb_path_ops)"

_NEVER: dict[str, Any] = {"__never__": {"$in": []}}  # a filter nothing matches ($in of nothing)
_ALWAYS: dict[str, Any] = {}


class QueryDatabase:
    """One connection (on its own event loop) to a fresh database holding the real table and the GIN index."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.connection: asyncpg.Connection = self.run(asyncpg.connect(dsn))
        self.run(migrate(self.connection))
        self.run(self.connection.execute(GIN_INDEX_DDL))

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def load(self, docs: list[dict[str, Any]]) -> None:
        """Replace the table's rows by ``docs``; row ``id`` is the document's index in the list."""
        bodies = [encode(doc) for doc in docs]  # the text the server itself sends
        self.run(self.connection.execute("DELETE FROM rerum_objects"))
        self.run(
            self.connection.execute(
                "INSERT INTO rerum_objects (id, body, doc) "
                "SELECT (n - 1)::text, b, b::jsonb FROM unnest($1::text[]) WITH ORDINALITY AS u(b, n)",
                bodies,
            )
        )

    def select(self, sql: str, params: tuple[Any, ...]) -> list[int]:
        """Indexes of the loaded documents that the SQL condition selects."""
        rows = self.run(
            self.connection.fetch(f"SELECT id FROM rerum_objects WHERE {sql} ORDER BY seq", *params)
        )
        return sorted(int(row["id"]) for row in rows)

    def find(self, filter_doc: dict[str, Any]) -> list[int]:
        """Parse, compile and run ``filter_doc`` over the loaded documents."""
        compiled = compile_filter(parse_filter(filter_doc))
        return self.select(compiled.sql, compiled.params)

    def close(self) -> None:
        self.run(self.connection.close())
        self.loop.close()


class MongoOracle:
    """``find(filter)`` with MongoDB's semantics: mongomock plus the documented corrections."""

    def __init__(self) -> None:
        self.collection = mongomock.MongoClient().db.documents

    def find(self, docs: list[dict[str, Any]], filter_doc: dict[str, Any]) -> list[int]:
        """Indexes of ``docs`` that MongoDB's ``find(filter_doc)`` returns."""
        self.collection.delete_many({})
        if docs:
            self.collection.insert_many([{**doc, "_id": index} for index, doc in enumerate(docs)])
        with _corrections():
            return sorted(found["_id"] for found in self.collection.find(rewrite(filter_doc), {"_id": 1}))


# ---------------------------------------------------------------------------------------------------------
# Rewrites: each replaces a construct by one a real MongoDB server treats identically (see docs/query.md).


def rewrite(filter_doc: dict[str, Any]) -> dict[str, Any]:
    """The same filter, in forms mongomock evaluates as MongoDB does."""
    parts: list[dict[str, Any]] = []
    for key, value in filter_doc.items():
        if key in LOGICAL_OPERATORS:
            parts.append({key: [rewrite(item) for item in value]})
        elif _is_operators(value):
            parts.extend(_rewrite_operators(key, value))
        else:
            parts.append(_equality(key, value))
    return parts[0] if len(parts) == 1 else {"$and": parts} if parts else _ALWAYS


def _equality(path: str, value: Any) -> dict[str, Any]:
    # mongomock matches {path: {}} when the path is missing (its positive/negative bookkeeping sees no
    # operator in an empty object); $in compares the same way and has no such hole.
    return {path: {"$in": [value]}} if value == {} else {path: value}


def _is_operators(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and next(iter(value)).startswith("$")


def _rewrite_operators(path: str, ops: dict[str, Any]) -> list[dict[str, Any]]:
    # Several operators on one field are independent conditions (MongoDB ANDs them); mongomock instead
    # requires all of them of the same array element when one of them is $ne/$nin.
    out = []
    for op, arg in ops.items():
        if op == "$options":
            continue
        if op == "$regex":
            out.append({path: {"$regex": _compiled(arg, ops.get("$options", ""))}})
        elif op == "$eq":
            out.append(_equality(path, arg))  # mongomock's $eq skips array elements equal to an array value
        elif op == "$ne":
            out.append({"$nor": [_equality(path, arg)]})
        elif op == "$in":  # mongomock's $in skips a whole array equal to an array value
            out.append({"$or": [_equality(path, value) for value in arg]} if arg else _NEVER)
        elif op == "$nin":
            out.append({"$nor": [_equality(path, value) for value in arg]} if arg else _ALWAYS)
        elif op == "$all":  # mongomock's $all crashes on mixed candidates and matches all for []
            out.append({"$and": [_all_item(path, item) for item in arg]} if arg else _NEVER)
        elif op == "$exists":  # mongomock's $exists: false holds if any one array element lacks the field
            out.append({path: {"$exists": True}} if arg else {"$nor": [{path: {"$exists": True}}]})
        elif op == "$not":
            out.append({"$nor": [rewrite({path: arg})]})
        elif op in ("$gte", "$lte") and arg is None:  # these match missing fields, as equality with null
            out.append(_equality(path, None))
        elif op in ("$gt", "$lt") and arg is None:
            out.append(_NEVER)
        elif op == "$type":  # mongomock knows neither type lists nor numeric codes
            names = arg if isinstance(arg, list) else [arg]
            out.append({"$or": [{path: {"$type": TYPE_CODES.get(name, name)}} for name in names]})
        elif op == "$elemMatch":
            out.append({path: {"$elemMatch": _rewrite_elem_match(arg)}})
        else:
            out.append({path: {op: arg}})
    return out


def _compiled(pattern: str, options: str) -> re.Pattern[str]:
    # What mongomock does with $options itself, done up front: it refuses $options inside $not.
    return re.compile(pattern, sum((_FLAGS[flag] for flag in set(options)), re.NOFLAG))


_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


def _all_item(path: str, item: Any) -> dict[str, Any]:
    if _is_operators(item):
        return {path: {"$elemMatch": _rewrite_elem_match(item["$elemMatch"])}}
    return _equality(path, item)


def _is_value_form(query: dict[str, Any]) -> bool:
    return _is_operators(query) and next(iter(query)) not in LOGICAL_OPERATORS


def _rewrite_elem_match(query: dict[str, Any]) -> dict[str, Any]:
    return _rewrite_value_operators(query) if _is_value_form(query) else rewrite(query)


def _rewrite_value_operators(ops: dict[str, Any]) -> dict[str, Any]:
    # Inside the value form each element is a single value; $in/$nin compare it as a whole (see the
    # $elemMatch patch below), which is what $eq/$ne mean there.
    out: dict[str, Any] = {}
    for op, arg in ops.items():
        if op == "$eq":
            out["$in"] = [arg]
        elif op == "$ne":
            out["$nin"] = [arg]
        elif op in ("$gte", "$lte") and arg is None:
            out["$in"] = [None]
        elif op in ("$gt", "$lt") and arg is None:
            out["$in"] = []
        elif op == "$regex":
            out["$regex"] = _compiled(arg, ops.get("$options", ""))
        elif op == "$options":
            continue
        elif op == "$not":
            out["$not"] = _rewrite_value_operators(arg)
        elif op == "$type":
            out["$type"] = TYPE_CODES.get(arg, arg)
        else:
            out[op] = arg
    return out


# ---------------------------------------------------------------------------------------------------------
# Patches of mongomock primitives (see docs/query.md, "The oracle").


def _size(value: Any, length: Any) -> bool:
    # MongoDB: $size matches arrays only (mongomock: also objects, and any truthy scalar for $size: 1).
    return isinstance(value, list) and len(value) == length


def _candidates(original: Any) -> Any:
    def candidates(key: str, doc: Any) -> Any:
        # MongoDB: a string/number/boolean/null with path left over means the field is missing, which
        # {path: null} matches (mongomock: no candidate at all). jstests/core/null_query_semantics.js.
        if key and not isinstance(doc, dict | list):
            return [filtering.NOTHING]
        return original(key, doc)

    return candidates


def _elem_match(filterer: Any) -> Any:
    def elem_match(value: Any, query: dict[str, Any]) -> bool:
        if not isinstance(value, list):
            return False
        value_form = _is_value_form(query)
        for item in value:
            if value_form:
                # Operators see the element as one value. Wrapping an array element in a one-item array
                # lets mongomock's one-level traversal reach the element itself, never inside it.
                holder = {"field": [item] if isinstance(item, list) else item}
                if filterer.apply({"field": query}, holder):
                    return True
            elif isinstance(item, dict | list):
                # MongoDB applies a field filter to object elements and to array elements read as
                # documents keyed "0", "1", ...; never to scalars. jstests/core/null_query_semantics.js.
                document = item if isinstance(item, dict) else {str(i): v for i, v in enumerate(item)}
                if filterer.apply(query, document):
                    return True
        return False

    return elem_match


@contextmanager
def _corrections() -> Iterator[None]:
    filterer = filtering._filterer_inst
    operators = filterer._operator_map
    saved_operators = {key: operators[key] for key in ("$size", "$elemMatch")}
    saved_candidates = filtering.iter_key_candidates
    saved_null = filtering.TYPE_MAP["null"]
    operators["$size"] = _size
    operators["$elemMatch"] = _elem_match(filterer)
    filtering.iter_key_candidates = _candidates(saved_candidates)
    filtering.TYPE_MAP["null"] = lambda value: value is None  # mongomock: "not implemented"
    try:
        yield
    finally:
        operators.update(saved_operators)
        filtering.iter_key_candidates = saved_candidates
        filtering.TYPE_MAP["null"] = saved_null

"""Selective invalidation is safe: whenever a write changes a query's result, their stamps intersect.

Documents, writes and filters are generated over the value space as PostgreSQL compares it
(``tests/support/json_space.py``: numbers in every spelling and size, keys that are empty, dotted,
``$``-prefixed, numeric or not ASCII, strings that differ in normalisation or length, nested arrays,
every supported operator). The oracle is PostgreSQL itself: each example loads the documents into
the real table (as the server's text) and runs the compiled filter before and after the write. If
the result (membership or content) differs, the write's stamps must share one with the query's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rerum_server.cache.query_stamps import cover, query_stamps
from rerum_server.cache.stamps import write_stamps
from rerum_server.errors import BadRequest
from rerum_server.query.parse import parse_filter
from rerum_server.versioning.change import Change
from tests.support.database import DatabaseServer
from tests.support.json_space import Space, dumps, parsed
from tests.support.mongo_oracle import QueryDatabase

SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}


@pytest.fixture(scope="module")
def database(test_database: DatabaseServer) -> Iterator[QueryDatabase]:
    db = QueryDatabase(test_database.new_database())
    yield db
    db.close()


def _result(database: QueryDatabase, docs: list[dict[str, Any]], filter_doc: dict[str, Any]) -> list[Any]:
    """The documents PostgreSQL selects for ``filter_doc``, in order, with their content."""
    database.load(docs)
    return [docs[index] for index in database.find(filter_doc)]


def _write(
    rng: random.Random, docs: list[dict[str, Any]], new_tree: dict[str, Any]
) -> tuple[list[Any], Change]:
    """One generated write: a replacement, an insertion or a delete (the document becomes a shell)."""
    kind = rng.choice(["replace", "insert", "delete"])
    target = rng.choice(docs)
    if kind == "insert":
        new = {**parsed(new_tree), "_id": f"{99:024x}"}
        return [*docs, new], Change(inserted=(new,))
    if kind == "delete":
        new = {"@id": "x", "__deleted": {"object": target}, "_id": target["_id"]}
    else:
        new = {**parsed(new_tree), "_id": target["_id"]}
    return [new if doc is target else doc for doc in docs], Change(replaced=((target, new),))


@settings(max_examples=1500, **SETTINGS)
@given(st.randoms(use_true_random=False))
def test_a_write_that_changes_a_result_shares_a_stamp_with_the_query(
    database: QueryDatabase, rng: random.Random
) -> None:
    space = Space(rng)
    trees = [space.document() for _ in range(rng.randint(1, 4))]
    docs = [{**parsed(tree), "_id": f"{n:024x}"} for n, tree in enumerate(trees)]
    new_tree = space.document()
    after, change = _write(rng, docs, new_tree)
    filter_text = dumps(space.filter_about([*trees, new_tree]) if rng.random() < 0.7 else space.filter())
    filter_doc = orjson.loads(filter_text)
    try:
        query = parse_filter(filter_doc)
    except BadRequest:
        assume(False)
        raise
    if _result(database, docs, filter_doc) != _result(database, after, filter_doc):
        assert set(write_stamps(change)) & set(query_stamps(query)), (filter_text, docs, after, cover(query))


def test_a_covered_query_does_not_depend_on_the_unselective_stamp() -> None:
    stamps = query_stamps(parse_filter({"target": "http://example.org/canvas/1"}))
    assert "qx" not in stamps and any(stamp.startswith("eq:") for stamp in stamps)
    assert "qx" in query_stamps(parse_filter({"target": {"$exists": True}}))
    assert "qx" in query_stamps(parse_filter({"$or": [{"a": 1}, {"b": {"$gt": 1}}]}))
    assert "qx" not in query_stamps(parse_filter({"$or": [{"a": 1}, {"b": {"$in": ["x", "y"]}}]}))

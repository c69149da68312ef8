"""Selective invalidation is safe: whenever a write changes a query's result, their stamps intersect.

Documents, writes and filters are generated; MongoDB semantics come from the query tests' oracle
(mongomock with its documented corrections), which never stands in for the database elsewhere.
A write replaces one document (or inserts or deletes one); if the filter's result (membership or
content) differs before and after, the write's stamps must share at least one with the query's.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rerum_server.cache.query_stamps import cover, query_stamps
from rerum_server.cache.stamps import write_stamps
from rerum_server.query.parse import parse_filter
from rerum_server.versioning.change import Change
from tests.support.mongo_oracle import MongoOracle

KEYS = ["a", "b", "c"]
# No 0 or 1: the oracle (mongomock) equates them with false/true, MongoDB and our compiler do not
# (docs/query.md, "The oracle").
scalars = st.one_of(st.integers(2, 5), st.sampled_from(["x", "y"]), st.booleans(), st.none(), st.just(2.0))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=6,
)
bodies = st.dictionaries(st.sampled_from(KEYS), values, max_size=3)
paths = st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(".".join)


def _condition() -> st.SearchStrategy[Any]:
    return st.one_of(
        scalars,
        st.fixed_dictionaries({"$eq": scalars}),
        st.fixed_dictionaries({"$in": st.lists(scalars, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"$ne": scalars}),
        st.fixed_dictionaries({"$gt": st.integers(2, 5)}),
        st.fixed_dictionaries({"$exists": st.booleans()}),
        st.fixed_dictionaries({"$size": st.integers(0, 2)}),
    )


fields = st.dictionaries(paths, _condition(), min_size=1, max_size=2)
filters = st.recursive(
    fields,
    lambda inner: st.one_of(
        st.fixed_dictionaries({"$or": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"$and": st.lists(inner, min_size=1, max_size=2)}),
        st.fixed_dictionaries({"$nor": st.lists(inner, min_size=1, max_size=2)}),
    ),
    max_leaves=4,
)


ORACLE = MongoOracle()


def _result(docs: list[dict[str, Any]], filter_doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The documents MongoDB returns for ``filter_doc`` (membership from the oracle, content from us)."""
    return [docs[index] for index in ORACLE.find([_without_id(doc) for doc in docs], filter_doc)]


def _without_id(doc: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if key != "_id"}


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(bodies, min_size=1, max_size=4),
    st.integers(0, 3),
    bodies,
    st.sampled_from(["replace", "insert", "delete"]),
    filters,
)
def test_a_write_that_changes_a_result_shares_a_stamp_with_the_query(
    population: list[dict[str, Any]],
    index: int,
    new_body: dict[str, Any],
    kind: str,
    filter_doc: dict[str, Any],
) -> None:
    docs = [{**body, "_id": f"{n:024x}"} for n, body in enumerate(population)]
    target = docs[index % len(docs)]
    if kind == "insert":
        new = {**new_body, "_id": f"{99:024x}"}
        after, change = [*docs, new], Change(inserted=(new,))
    elif kind == "delete":
        shell = {"@id": "x", "__deleted": {"object": target}, "_id": target["_id"]}
        after = [shell if doc is target else doc for doc in docs]
        change = Change(replaced=((target, shell),))
    else:
        new = {**new_body, "_id": target["_id"]}
        after = [new if doc is target else doc for doc in docs]
        change = Change(replaced=((target, new),))
    try:
        parsed = parse_filter(filter_doc)
        before_result, after_result = _result(docs, filter_doc), _result(after, filter_doc)
    except Exception:  # a filter either side refuses is not a query anyone can cache
        assume(False)
        raise
    if before_result != after_result:
        assert set(write_stamps(change)) & set(query_stamps(parsed)), (filter_doc, cover(parsed))


def test_a_covered_query_does_not_depend_on_the_unselective_stamp() -> None:
    stamps = query_stamps(parse_filter({"target": "http://example.org/canvas/1"}))
    assert "qx" not in stamps and any(stamp.startswith("eq:") for stamp in stamps)
    assert "qx" in query_stamps(parse_filter({"target": {"$exists": True}}))
    assert "qx" in query_stamps(parse_filter({"$or": [{"a": 1}, {"b": {"$gt": 1}}]}))
    assert "qx" not in query_stamps(parse_filter({"$or": [{"a": 1}, {"b": {"$in": ["x", "y"]}}]}))

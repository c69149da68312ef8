"""compile_filter on the real PostgreSQL: hand-written cases per operator, MongoDB's corner cases, the
documented differences, the shape of the SQL (no user data in its text) and the GIN index plan.

Expected results quoted from MongoDB's own test suite (jstests/core/match_numeric_components.js and
jstests/core/null_query_semantics.js) are MongoDB 8 server behaviour; documents holding `undefined` there
are left out (JSON has no undefined).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from rerum_server.errors import BadRequest, ServiceUnavailable
from rerum_server.query import SqlFilter, compile_filter, parse_filter
from rerum_server.query.compile import MAX_QUERY_TESTS
from rerum_server.reads import QUERY_TIMEOUT, Reads
from rerum_server.store import documents
from rerum_server.store.pool import open_pool
from tests.support.database import DatabaseServer
from tests.support.mongo_oracle import QueryDatabase


@pytest.fixture(scope="module")
def database(test_database: DatabaseServer) -> Iterator[QueryDatabase]:
    db = QueryDatabase(test_database.new_database())
    yield db
    db.close()


def found(database: QueryDatabase, docs: list[Any], query: dict[str, Any]) -> list[int]:
    """Indexes of ``docs`` that ``query`` selects."""
    database.load(docs)
    return database.find(query)


def found_named(database: QueryDatabase, named: dict[str, Any], query: dict[str, Any]) -> set[str]:
    names = list(named)
    return {names[index] for index in found(database, list(named.values()), query)}


# ---------------------------------------------------------------------------------------------------------
# Equality and array traversal


def test_implicit_equality_includes_array_elements(database: QueryDatabase) -> None:
    docs = [{"a": 5}, {"a": [4, 5]}, {"a": [[5]]}, {"a": "5"}, {"a": 5.0}, {}, {"a": {"b": 5}}]
    assert found(database, docs, {"a": 5}) == [0, 1, 4]
    assert found(database, docs, {"a": {"$eq": 5}}) == [0, 1, 4]


def test_whole_arrays_and_documents_are_compared_exactly(database: QueryDatabase) -> None:
    docs = [{"a": [1, 2]}, {"a": [2, 1]}, {"a": [[1, 2], 3]}, {"a": [1, 2, 3]}, {"a": [[[1, 2]]]}, {"a": 1}]
    assert found(database, docs, {"a": [1, 2]}) == [0, 2]
    assert found(database, docs, {"a": {"$eq": [1, 2]}}) == [0, 2]
    assert found(database, docs, {"a": {"$in": [[1, 2]]}}) == [0, 2]
    assert found(database, docs, {"a": []}) == []
    subdocs = [
        {"a": {"x": 1}},
        {"a": {"x": 1, "y": 2}},
        {"a": [{"x": 1}]},
        {"a": {"x": 1.0}},
        {"a": {"x": [1]}},
    ]
    assert found(database, subdocs, {"a": {"x": 1}}) == [0, 2, 3]
    assert found(database, [*subdocs, {"a": {}}, {"a": [{}]}, {}], {"a": {}}) == [5, 6]


def test_subdocument_equality_ignores_key_order(database: QueryDatabase) -> None:
    # Deliberate difference: MongoDB compares key order too; jsonb does not keep it.
    assert found(database, [{"a": {"x": 1, "y": 2}}], {"a": {"y": 2, "x": 1}}) == [0]


def test_dotted_paths_look_into_one_level_of_array_per_step(database: QueryDatabase) -> None:
    docs = [
        {"a": {"b": 5}},
        {"a": [{"b": 5}]},
        {"a": [[{"b": 5}]]},
        {"a": [{"b": [5]}]},
        {"a": [{"b": [[5]]}]},
        {"a": [{"c": 1}, {"b": 5}]},
        {"a": 5},
    ]
    assert found(database, docs, {"a.b": 5}) == [0, 1, 3, 5]
    deep = [{"a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": {"c": 3}}]}, {"a": {"b": [[{"c": 1}]]}}]
    assert found(database, deep, {"a.b.c": 3}) == [0]
    assert found(database, deep, {"a.b.c": 1}) == [0]


def test_booleans_are_not_numbers(database: QueryDatabase) -> None:
    docs = [{"a": True}, {"a": 1}, {"a": False}, {"a": 0}, {"a": [True]}]
    assert found(database, docs, {"a": 1}) == [1]
    assert found(database, docs, {"a": True}) == [0, 4]
    assert found(database, docs, {"a": {"$in": [0, True]}}) == [0, 3, 4]
    assert found(database, docs, {"a": {"$gt": 0}}) == [1]
    assert found(database, docs, {"a": {"$gt": False}}) == [0, 4]


# ---------------------------------------------------------------------------------------------------------
# Numeric path components (MongoDB: jstests/core/match_numeric_components.js)

NESTINGS = ["".join(wrappers) for depth in range(5) for wrappers in itertools.product("AO", repeat=depth)]


def nested(wrappers: str) -> Any:
    """42 wrapped, outermost first, in arrays (A) and objects keyed "0" (O)."""
    value: Any = 42
    for wrapper in reversed(wrappers):
        value = [value] if wrapper == "A" else {"0": value}
    return value


NUMERIC = {name: {"a": nested(name)} for name in NESTINGS}
A_0 = {"A", "O", "AO", "OA", "AOA"}
A_0_0 = {"AA", "AO", "OA", "OO", "AAO", "AOA", "AOO", "OAO", "OOA", "AAOA", "AOAO", "AOOA", "OAOA"}
A_0_ELEM_MATCH = {"AAA", "AAO", "OAA", "OAO", "AAAA", "AAOA", "AOAA", "AOAO", "OAAA", "OAOA"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"a.0": 42}, A_0),
        ({"a.0": {"$ne": 42}}, set(NESTINGS) - A_0),
        ({"a.0.0": 42}, A_0_0),
        ({"a.0": {"$gt": 41}}, A_0),
        ({"a.0": {"$in": [41, 42, 43]}}, A_0),
        ({"a.0": {"$nin": [41, 42, 43]}}, set(NESTINGS) - A_0),
        ({"a.0": {"$all": [42]}}, A_0),
        ({"a.0": {"$all": [{"$elemMatch": {"0": 42}}]}}, A_0_ELEM_MATCH),
        ({"a.0": {"$type": "number"}}, A_0),
        ({"$or": [{"a.0": 42}, {"notARealField": 123}]}, A_0),
    ],
)
def test_numeric_components_are_positions_and_keys(
    database: QueryDatabase, query: dict, expected: set
) -> None:
    assert found_named(database, NUMERIC, query) == expected


def test_numeric_components_with_regex(database: QueryDatabase) -> None:
    docs = [{"b": "hello"}, {"b": {"0": "hello"}}, {"b": ["hello", "abc", "abc"]}]
    assert found(database, docs, {"b.0": {"$regex": "hello"}}) == [1, 2]


def test_only_canonical_numbers_are_positions(database: QueryDatabase) -> None:
    # Documented choice: "01" (or "-1", "+1") is a key, never a position.
    docs = [{"a": [5, 6]}, {"a": {"01": 6}}]
    assert found(database, docs, {"a.1": 6}) == [0]
    assert found(database, docs, {"a.01": 6}) == [1]


def test_position_beyond_the_array(database: QueryDatabase) -> None:
    docs = [{"a": [1, 2]}, {"a": [{"b": 1}]}, {"a": []}]
    assert found(database, docs, {"a.5": {"$exists": True}}) == []
    assert found(database, docs, {"a.0.b": 1}) == [1]


# ---------------------------------------------------------------------------------------------------------
# null and missing (MongoDB: jstests/core/null_query_semantics.js)

NULLS = {
    "a_empty_subobject": {"a": {}},
    "a_null": {"a": None},
    "a_number": {"a": 4},
    "a_subobject_b_not_null": {"a": {"b": "hi"}},
    "a_subobject_b_null": {"a": {"b": None}},
    "no_a": {},
    "a_double_array": {"a": [[]]},
    "a_empty_array": {"a": []},
    "a_object_array_b_mix_null_missing": {"a": [{"b": None}, {"b": None}, {}]},
    "a_object_array_no_b_nulls": {"a": [{"b": 1}, {"b": 3}, {"b": "string"}]},
    "a_object_array_some_b_nulls": {"a": [{"b": None}, {"b": 3}, {"b": None}]},
    "a_object_array_some_b_missing": {"a": [{"b": 3}, {}]},
    "a_value_array_all_nulls": {"a": [None, None]},
    "a_value_array_no_nulls": {"a": [1, "string", 4]},
    "a_value_array_with_null": {"a": [1, "string", None, 4]},
}
A_NULL = {"a_null", "no_a", "a_value_array_all_nulls", "a_value_array_with_null"}
A_B_NULL = {
    "a_empty_subobject",
    "a_null",
    "a_number",
    "a_subobject_b_null",
    "no_a",
    "a_object_array_b_mix_null_missing",
    "a_object_array_some_b_nulls",
    "a_object_array_some_b_missing",
}
OBJECT_ARRAYS = {
    "a_object_array_b_mix_null_missing",
    "a_object_array_no_b_nulls",
    "a_object_array_some_b_nulls",
    "a_object_array_some_b_missing",
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"a": None}, A_NULL),
        ({"a": {"$eq": None}}, A_NULL),
        ({"a": {"$ne": None}}, set(NULLS) - A_NULL),
        ({"a": {"$in": [None, 75]}}, A_NULL),
        ({"a": {"$nin": [None, 75]}}, set(NULLS) - A_NULL),
        ({"a": {"$nin": [None, []]}}, set(NULLS) - A_NULL - {"a_double_array", "a_empty_array"}),
        ({"a": {"$not": {"$gte": None}}}, set(NULLS) - A_NULL),
        ({"a": {"$lte": None}}, A_NULL),
        ({"a": {"$gt": None}}, set()),
        ({"a": {"$exists": False}}, {"no_a"}),
        ({"a.b": None}, A_B_NULL),
        ({"a.b": {"$ne": None}}, set(NULLS) - A_B_NULL),
        ({"a.b": {"$in": [None, 75]}}, A_B_NULL),
        ({"a.b": {"$nin": [None, 75]}}, set(NULLS) - A_B_NULL),
        ({"a": {"$elemMatch": {"$eq": None}}}, {"a_value_array_all_nulls", "a_value_array_with_null"}),
        (
            {"a": {"$elemMatch": {"$ne": None}}},
            OBJECT_ARRAYS | {"a_double_array", "a_value_array_no_nulls", "a_value_array_with_null"},
        ),
        ({"a.b": {"$elemMatch": {"$eq": None}}}, set()),
        (
            {"a": {"$elemMatch": {"b": {"$eq": None}}}},
            OBJECT_ARRAYS - {"a_object_array_no_b_nulls"} | {"a_double_array"},
        ),
        ({"a": {"$elemMatch": {"b": {"$ne": None}}}}, OBJECT_ARRAYS - {"a_object_array_b_mix_null_missing"}),
    ],
)
def test_null_matches_null_and_missing(database: QueryDatabase, query: dict, expected: set) -> None:
    assert found_named(database, NULLS, query) == expected


def test_dotted_exists_false_means_no_value_anywhere(database: QueryDatabase) -> None:
    expected = {
        "no_a",
        "a_empty_subobject",
        "a_null",
        "a_number",
        "a_double_array",
        "a_empty_array",
        "a_value_array_all_nulls",
        "a_value_array_no_nulls",
        "a_value_array_with_null",
    }
    assert found_named(database, NULLS, {"a.b": {"$exists": False}}) == expected
    assert found(database, [{"a": [{"b": 1}, {"c": 1}]}], {"a.b": {"$exists": False}}) == []


# ---------------------------------------------------------------------------------------------------------
# Operators


def test_ne_and_nin_negate_the_whole_array(database: QueryDatabase) -> None:
    docs = [{"a": [5, 6]}, {"a": [6]}, {}, {"a": [[5]]}, {"a": [[1, 2], 3]}]
    assert found(database, docs, {"a": {"$ne": 5}}) == [1, 2, 3, 4]
    assert found(database, docs, {"a": {"$ne": [1, 2]}}) == [0, 1, 2, 3]
    assert found(database, docs, {"a": {"$nin": [5, 3]}}) == [1, 2, 3]
    assert found(database, docs, {"a": {"$nin": []}}) == [0, 1, 2, 3, 4]
    assert found(database, docs, {"a": {"$in": []}}) == []


def test_several_operators_on_a_field_hold_independently(database: QueryDatabase) -> None:
    docs = [{"a": [0, 10]}, {"a": [5, 6]}, {"a": [6, 0]}, {"a": 3}]
    assert found(database, docs, {"a": {"$gt": 1, "$lt": 5}}) == [0, 2, 3]
    assert found(database, docs, {"a": {"$ne": 5, "$gt": 1}}) == [0, 2, 3]


def test_comparisons_never_cross_types(database: QueryDatabase) -> None:
    docs = [{"a": 2}, {"a": "2"}, {"a": True}, {"a": None}, {"a": [3, "b"]}, {"a": {"x": 5}}, {"a": "B"}, {}]
    assert found(database, docs, {"a": {"$gt": 1}}) == [0, 4]
    assert found(database, docs, {"a": {"$gte": "2"}}) == [1, 4, 6]
    assert found(database, docs, {"a": {"$lt": "a"}}) == [1, 6]
    assert found(database, docs, {"a": {"$lte": True}}) == [2]
    assert found(database, docs, {"a": {"$gte": None}}) == [3, 7]
    assert found(database, [{"a": "é"}, {"a": "z"}, {"a": "Z"}], {"a": {"$gt": "z"}}) == [0]


def test_exists(database: QueryDatabase) -> None:
    docs = [{"a": None}, {"a": []}, {"a": [{"b": 1}]}, {"a": [1]}, {}]
    assert found(database, docs, {"a": {"$exists": True}}) == [0, 1, 2, 3]
    assert found(database, docs, {"a.b": {"$exists": True}}) == [2]
    assert found(database, docs, {"a.b": {"$exists": 0}}) == [0, 1, 3, 4]


def test_size_matches_arrays_only(database: QueryDatabase) -> None:
    docs = [{"a": [1]}, {"a": "x"}, {"a": {"x": 1}}, {"a": [[1, 2]]}, {"a": 5}, {"a": [{"b": [1, 2]}]}, {}]
    assert found(database, docs, {"a": {"$size": 1}}) == [0, 3, 5]
    assert found(database, docs, {"a": {"$size": 2}}) == []
    assert found(database, docs, {"a.b": {"$size": 2}}) == [5]
    assert found(database, [{"a": []}, {"a": {}}, {}], {"a": {"$size": 0}}) == [0]
    assert found(database, docs, {"a": {"$not": {"$size": 1}}}) == [1, 2, 4, 6]


def test_all(database: QueryDatabase) -> None:
    docs = [{"a": [1, 2, 3]}, {"a": [1]}, {"a": 1}, {"a": [[1, 2]]}, {"a": [{"b": 1}, {"b": 2, "c": 3}]}, {}]
    assert found(database, docs, {"a": {"$all": [1, 2]}}) == [0]
    assert found(database, docs, {"a": {"$all": [1]}}) == [0, 1, 2]
    assert found(database, docs, {"a": {"$all": [[1, 2]]}}) == [3]
    assert found(database, docs, {"a": {"$all": []}}) == []
    both = {"a": {"$all": [{"$elemMatch": {"b": 1}}, {"$elemMatch": {"b": 2, "c": 3}}]}}
    assert found(database, docs, both) == [4]
    assert found(database, docs, {"a": {"$all": [{"$elemMatch": {"b": 2, "c": 4}}]}}) == []
    assert found(database, [{"a": [{"b": [1]}, {"b": 2}]}], {"a.b": {"$all": [1, 2]}}) == [0]


def test_elem_match_on_values(database: QueryDatabase) -> None:
    docs = [{"a": [1, 8]}, {"a": [3]}, {"a": [[5]]}, {"a": 3}, {"a": [1, "x"]}, {"a": []}]
    assert found(database, docs, {"a": {"$elemMatch": {"$gt": 2, "$lt": 6}}}) == [1]
    assert found(database, docs, {"a": {"$gt": 2, "$lt": 6}}) == [0, 1, 3]
    assert found(database, docs, {"a": {"$elemMatch": {"$gt": 4}}}) == [0]
    assert found(database, docs, {"a": {"$elemMatch": {"$eq": [5]}}}) == [2]
    assert found(database, docs, {"a": {"$elemMatch": {"$size": 1}}}) == [2]
    assert found(database, docs, {"a": {"$elemMatch": {"$not": {"$type": "number"}}}}) == [2, 4]
    assert found(database, docs, {"a": {"$elemMatch": {"$exists": True}}}) == [0, 1, 2, 4]
    assert found(
        database, [{"a": [[1, [7]]]}], {"a": {"$elemMatch": {"$elemMatch": {"$elemMatch": {"$eq": 7}}}}}
    ) == [0]


def test_elem_match_on_documents(database: QueryDatabase) -> None:
    docs = [
        {"a": [{"b": 1, "c": 2}, {"b": 2, "c": 1}]},
        {"a": [{"b": 1, "c": 1}]},
        {"a": {"b": 1, "c": 1}},
        {"a": [1, "x", None]},
        {"a": [[{"b": 1, "c": 1}]]},
        {"a": [{"b": [1, 5], "c": 1}]},
    ]
    assert found(database, docs, {"a": {"$elemMatch": {"b": 1, "c": 1}}}) == [1, 5]
    assert found(database, docs, {"a.b": 1, "a.c": 1}) == [0, 1, 2, 5]
    assert found(database, docs, {"a": {"$elemMatch": {"$or": [{"b": 2}, {"c": 2}]}}}) == [0]
    assert found(database, docs, {"a": {"$elemMatch": {}}}) == [0, 1, 4, 5]
    assert found(database, [{"a": [[42]]}, {"a": [42]}], {"a": {"$elemMatch": {"0": 42}}}) == [0]


def test_not_with_regex_and_nor(database: QueryDatabase) -> None:
    docs = [{"a": "xy"}, {"a": "yx"}, {}, {"a": 5}, {"a": ["xa", "b"]}]
    assert found(database, docs, {"a": {"$not": {"$regex": "^x"}}}) == [1, 2, 3]
    assert found(database, docs, {"$nor": [{"a": {"$regex": "^x"}}, {"a": 5}]}) == [1, 2]
    assert found(database, docs, {"$nor": [{"a": "yx"}], "a": {"$exists": True}}) == [0, 3, 4]


def test_logical_operators(database: QueryDatabase) -> None:
    docs = [{"a": 1, "b": 2}, {"a": 1}, {"b": 2}, {}]
    assert found(database, docs, {"$and": [{"a": 1}, {"b": 2}]}) == [0]
    assert found(database, docs, {"$or": [{"a": 1}, {"b": 2}]}) == [0, 1, 2]
    assert found(database, docs, {"$or": [{"$and": [{"a": 1}, {"b": {"$exists": False}}]}, {"a": None}]}) == [
        1,
        2,
        3,
    ]
    assert found(database, docs, {}) == [0, 1, 2, 3]


def test_type(database: QueryDatabase) -> None:
    docs = [
        {"a": "s"},
        {"a": 1},
        {"a": 1.5},
        {"a": 3_000_000_000},
        {"a": True},
        {"a": None},
        {"a": {"x": 1}},
        {"a": [1, "s"]},
        {"a": []},
        {"a": [[1]]},
        {},
        {"a": 2.0},
        {"a": 1e20},  # what the server stores for 100000000000000000000 (orjson reads it as a double)
    ]
    assert found(database, docs, {"a": {"$type": "string"}}) == [0, 7]
    assert found(database, docs, {"a": {"$type": "number"}}) == [1, 2, 3, 7, 11, 12]
    assert found(database, docs, {"a": {"$type": "int"}}) == [1, 7, 11]
    assert found(database, docs, {"a": {"$type": 1}}) == [2, 12]
    assert found(database, docs, {"a": {"$type": "long"}}) == [3]
    assert found(database, docs, {"a": {"$type": "bool"}}) == [4]
    assert found(database, docs, {"a": {"$type": 10}}) == [5]
    assert found(database, docs, {"a": {"$type": "object"}}) == [6]
    assert found(database, docs, {"a": {"$type": "array"}}) == [7, 8, 9]
    assert found(database, docs, {"a": {"$type": ["bool", "null"]}}) == [4, 5]
    assert found(database, docs, {"a": {"$type": ["date", "decimal", "objectId"]}}) == []


def test_regex(database: QueryDatabase) -> None:
    docs = [{"a": "Hello"}, {"a": "say\nhello"}, {"a": ["x", "hello!"]}, {"a": 5}, {"a": "hello\n"}, {}]
    assert found(database, docs, {"a": {"$regex": "^hello"}}) == [2, 4]
    assert found(database, docs, {"a": {"$regex": "^hello", "$options": "im"}}) == [0, 1, 2, 4]
    assert found(database, docs, {"a": {"$regex": "hello$"}}) == [1, 4]
    assert found(database, docs, {"a": {"$regex": "y.h"}}) == []
    assert found(database, docs, {"a": {"$regex": "y.h", "$options": "s"}}) == [1]
    assert found(database, docs, {"a": {"$regex": "h e l # spaced\n lo!", "$options": "x"}}) == [2]
    assert found(database, docs, {"a": {"$regex": "\\bhello\\b"}}) == [1, 2, 4]
    assert found(database, docs, {"a": {"$regex": ""}}) == [0, 1, 2, 4]


def test_regex_classes_are_ascii_as_in_pcre(database: QueryDatabase) -> None:
    # Documented: as MongoDB's PCRE (no UCP), \d \w \s and \b know ASCII only; Python's re differs.
    docs = [{"a": "٣"}, {"a": "é"}, {"a": "\u00a0"}, {"a": "3"}]
    assert found(database, docs, {"a": {"$regex": "\\d"}}) == [3]
    assert found(database, docs, {"a": {"$regex": "^\\w$"}}) == [3]
    assert found(database, docs, {"a": {"$regex": "\\s"}}) == []
    assert found(database, docs, {"a": {"$regex": "\\S"}}) == [0, 1, 2, 3]


def test_regex_newline_and_boundary_edge_cases(database: QueryDatabase) -> None:
    docs = [{"a": ""}, {"a": "a\rb"}, {"a": "x\n"}]
    assert found(database, docs, {"a": {"$regex": "\\B"}}) == [0, 2]  # as PCRE; Python's re: never on ""
    assert found(database, docs, {"a": {"$regex": "a.b"}}) == [1]  # '.' excludes only \n
    assert found(database, docs, {"a": {"$regex": "^$", "$options": "m"}}) == [0, 2]  # after a final \n too


def test_case_insensitive_regex_folds_simple_unicode_cases(database: QueryDatabase) -> None:
    # Documented: beyond ASCII, case folding is the database's (its ctype); on UTF-8 locales as PCRE's.
    docs = [{"a": "é"}, {"a": "Ω"}, {"a": "ß"}, {"a": "E"}]
    assert found(database, docs, {"a": {"$regex": "^(É|ω|SS)$", "$options": "i"}}) == [0, 1]


# ---------------------------------------------------------------------------------------------------------
# The SQL


def test_no_user_data_in_the_sql_text() -> None:
    query = {
        "SECRET_PATH.x'y": "SECRET_VALUE",
        "$or": [{"k": {"$regex": "SECRET_RE'--"}}, {"k": {"$in": ["SECRET_IN", 12345]}}],
        "n": {"$elemMatch": {"SECRET_SUB": {"$gt": 67890}}},
    }
    compiled = compile_filter(parse_filter(query))
    for secret in ("SECRET", "'", "12345", "67890"):
        assert secret not in compiled.sql
    assert all(isinstance(param, str) for param in compiled.params)
    joined = " ".join(compiled.params)
    # (the pattern arrives translated: '_' is written \u005f, its backslash doubled in the jsonpath literal)
    for secret in (
        "SECRET_PATH",
        "SECRET_VALUE",
        r"SECRET\\u005fRE",
        "SECRET_IN",
        "SECRET_SUB",
        "12345",
        "67890",
    ):
        assert secret in joined


def test_placeholders_start_at_first_param(database: QueryDatabase) -> None:
    compiled = compile_filter(parse_filter({"a": 1, "b": {"$gt": 2}}), first_param=4)
    assert "$4" in compiled.sql and "$1" not in compiled.sql and "$3" not in compiled.sql
    database.load([{"a": 1, "b": 3}, {"a": 1, "b": 1}])
    sql = f"id = $1 OR (id <> $2 AND id <> $3 AND {compiled.sql})"
    assert database.select(sql, ("none", "x", "y", *compiled.params)) == [0]


def test_constant_filters_need_no_parameters() -> None:
    assert compile_filter(parse_filter({})).sql == "TRUE"
    assert compile_filter(parse_filter({"a": {"$in": []}})) == compile_filter(
        parse_filter({"a": {"$all": []}})
    )
    assert compile_filter(parse_filter({"a": {"$in": []}})).sql == "FALSE"
    assert compile_filter(parse_filter({"a": {"$nin": []}})).params == ()


def test_long_lists_stay_shallow(database: QueryDatabase) -> None:
    values = [f"v{i}" for i in range(100)] + list(range(100)) + [[i] for i in range(5)]
    docs = [{"a": "v99"}, {"a": 99}, {"a": [4]}, {"a": [[4]]}, {"a": "w"}]
    assert found(database, docs, {"a": {"$in": values}}) == [0, 1, 2, 3]
    conditions = [{"a": {"$ne": f"x{i}"}} for i in range(60)]
    assert found(database, docs, {"$and": conditions}) == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------------------------------------
# The cost of a query is bounded (issue 10): one index condition, a bounded predicate, three parameters


@pytest.mark.parametrize(
    ("query", "matching", "missing"),
    [
        ({f"k{i}": f"v{i}" for i in range(60)}, {f"k{i}": f"v{i}" for i in range(60)}, "k59"),
        ({"$or": [{f"k{i}": i} for i in range(40)]}, {"k39": [39]}, "k39"),
        ({"t": {"$all": [f"s{i}" for i in range(60)]}}, {"t": [f"s{i}" for i in range(60)]}, "t"),
        ({"a": list(range(40))}, {"a": [list(range(40)), 5]}, "a"),
    ],
)
def test_many_equalities_are_one_index_condition(
    large: QueryDatabase, query: dict, matching: dict, missing: str
) -> None:
    compiled = compile_filter(parse_filter(query))
    # Before: one `doc @> $k` per shape and equality (2 per key, 2 parameters each), and a planner weighing
    # combinations of as many bitmap scans.
    assert compiled.sql.count(" @@ ") == 1 and " @> " not in compiled.sql
    assert len(compiled.params) == 3
    plan = explain(large, compiled)
    assert plan.count("Bitmap Index Scan on rerum_objects_doc") == 1 and "BitmapAnd" not in plan, plan
    assert "BitmapOr" not in plan, plan
    partial = {key: value for key, value in matching.items() if key != missing}
    insert = "INSERT INTO rerum_objects (id, body, doc) VALUES ($1, $2::text, $2::jsonb)"
    large.run(large.connection.executemany(insert, [(str(ROWS), json.dumps(matching)),
                                                     (str(ROWS + 1), json.dumps(partial))]))  # fmt: skip
    try:
        assert large.select(compiled.sql, compiled.params) == [ROWS]
    finally:
        large.run(
            large.connection.execute(
                "DELETE FROM rerum_objects WHERE id = ANY($1)", [str(ROWS), str(ROWS + 1)]
            )
        )


BEYOND_THE_LIMIT = [
    {f"k{i}": f"v{i}" for i in range(100)},
    {f"k{i}": f"v{i}" for i in range(1000)},
    {"$or": [{f"k{i}": f"v{i}"} for i in range(2000)]},
    {"t": {"$all": [f"s{i}" for i in range(2000)]}},
    {"a": list(range(12_500))},
    {f"k{i}": i for i in range(16_384)},  # 32,768 parameters before: asyncpg's limit is 32,767
    {"$or": [{"a.b": {"$gt": f"z{i}"}} for i in range(60)]},  # no index condition: a scan of every row
    {"a": {"$nin": [f"x{i}" for i in range(1200)]}},
    # beyond the 32 regexes a backend caches compiled, each is compiled again for every row
    {"$or": [{"a": {"$regex": f"x{i}"}} for i in range(34)]},
]


@pytest.mark.parametrize("query", BEYOND_THE_LIMIT, ids=range(len(BEYOND_THE_LIMIT)))
def test_queries_beyond_the_test_limit_are_refused_naming_it(query: dict) -> None:
    with pytest.raises(BadRequest) as refused:
        compile_filter(parse_filter(query))
    assert f"more than the limit of {MAX_QUERY_TESTS}" in refused.value.message


def test_the_page_query_after_a_dense_probe_may_walk_the_primary_key(large: QueryDatabase) -> None:
    # The probe prefers bitmap scans with SET LOCAL in a savepoint; released, the settings outlived it and
    # a dense query sorted every match (seconds on 100,000 rows) instead of walking the primary key.
    compiled = compile_filter(parse_filter({"__rerum.history.prime": "root"}))

    async def page() -> tuple[int, str, str]:
        async with large.connection.transaction(readonly=True, isolation="repeatable_read"):
            docs = await documents.matching(large.connection, compiled.sql, compiled.params, 10, 0, probe=100)
            settings = await large.connection.fetchrow(
                "SELECT current_setting('enable_seqscan') AS s, current_setting('enable_indexscan') AS i"
            )
        return len(docs), settings["s"], settings["i"]

    assert large.run(page()) == (10, "on", "on")


def test_a_query_cancelled_by_the_statement_timeout_answers_503_saying_so(
    large: QueryDatabase, large_dsn: str
) -> None:
    # Within the limits, 50 unindexed conditions on each of 20,000 rows take ~1 s: far beyond 100 ms (and the
    # session's idle-in-transaction timeout, twice that, leaves time to send the statements).
    compiled = compile_filter(parse_filter({"$or": [{"body.value": {"$gt": f"z{i}"}} for i in range(50)]}))

    async def run() -> None:
        pool = await open_pool(large_dsn, size=1, statement_timeout_ms=100)
        try:
            await Reads(pool, "https://store.example/v1/id/").query(
                compiled, 10, 0, identity="timeout", stamps=[]
            )
        finally:
            await pool.close()

    with pytest.raises(ServiceUnavailable) as cancelled:
        large.run(run())
    assert cancelled.value.message == QUERY_TIMEOUT


# ---------------------------------------------------------------------------------------------------------
# The GIN index serves equalities

ROWS = 20_000


@pytest.fixture(scope="module")
def large_dsn(test_database: DatabaseServer) -> str:
    return test_database.new_database()


@pytest.fixture(scope="module")
def large(large_dsn: str) -> Iterator[QueryDatabase]:
    db = QueryDatabase(large_dsn)
    db.load(
        [
            {
                "target": f"https://example.org/canvas/{i}",
                "body": {"value": f"text {i % 997}"},
                "__rerum": {"history": {"prime": "root" if i % 10 == 0 else f"https://store/{i // 10 * 10}"}},
                "items": [{"id": f"item-{i}"}, {"id": f"item-{i + 1}"}],
            }
            for i in range(ROWS)
        ]
    )
    # VACUUM flushes GIN's pending list of fresh entries (autovacuum does it in service); while entries are
    # pending the planner rightly prices index scans high.
    db.run(db.connection.execute("VACUUM ANALYZE rerum_objects"))
    yield db
    db.close()


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ({"target": "https://example.org/canvas/123"}, 1),
        ({"__rerum.history.prime": "https://store/120"}, 9),
        ({"body.value": "text 5"}, 21),
        ({"items.id": "item-77"}, 2),
        ({"target": {"$in": ["https://example.org/canvas/1", "https://example.org/canvas/2"]}}, 2),
        ({"$or": [{"target": "https://example.org/canvas/1"}, {"body.value": "text 7"}]}, 22),
    ],
)
def test_equalities_use_the_gin_index(large: QueryDatabase, query: dict, count: int) -> None:
    compiled = compile_filter(parse_filter(query))
    plan = explain(large, compiled)
    assert "Bitmap Index Scan on rerum_objects_doc" in plan, plan
    assert len(large.select(compiled.sql, compiled.params)) == count


def explain(database: QueryDatabase, compiled: SqlFilter) -> str:
    """The plan PostgreSQL chooses for selecting the rows ``compiled`` matches."""
    rows = database.run(
        database.connection.fetch(
            f"EXPLAIN SELECT id FROM rerum_objects WHERE {compiled.sql}", *compiled.params
        )
    )
    return "\n".join(row[0] for row in rows)

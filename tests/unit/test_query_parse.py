"""parse_filter: the tree it builds, and every refusal is a BadRequest that names the operator."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rerum_server.errors import BadRequest
from rerum_server.query.parse import (
    All,
    AllOf,
    And,
    Compare,
    ElemMatchDocument,
    ElemMatchValue,
    Eq,
    Exists,
    Field,
    In,
    Nor,
    Not,
    Or,
    Regex,
    Size,
    TypeIs,
    parse_filter,
)


def refusal(filter_doc: Any) -> str:
    with pytest.raises(BadRequest) as caught:
        parse_filter(filter_doc)
    assert caught.value.status == 400
    return caught.value.message


# ---------------------------------------------------------------------------------------------------------
# The tree


def test_fields_and_implicit_equality() -> None:
    assert parse_filter({"target": "x"}) == Field(("target",), Eq("x"))
    assert parse_filter({"body.value": {"a": 1}}) == Field(("body", "value"), Eq({"a": 1}))
    assert parse_filter({"a": 1, "b": None}) == And((Field(("a",), Eq(1)), Field(("b",), Eq(None))))
    assert parse_filter({}) == And(())


def test_a_literal_document_is_one_whose_first_key_is_not_an_operator() -> None:
    assert parse_filter({"a": {"b": 1, "$c": 2}}) == Field(("a",), Eq({"b": 1, "$c": 2}))
    assert parse_filter({"a": {}}) == Field(("a",), Eq({}))


def test_operators() -> None:
    assert parse_filter({"a": {"$gt": 1, "$lte": "z"}}) == Field(
        ("a",), AllOf((Compare("$gt", 1), Compare("$lte", "z")))
    )
    assert parse_filter({"a": {"$ne": 1}}) == Field(("a",), Not(Eq(1)))
    assert parse_filter({"a": {"$in": [1, None]}}) == Field(("a",), In((1, None)))
    assert parse_filter({"a": {"$nin": []}}) == Field(("a",), Not(In(())))
    assert parse_filter({"a": {"$exists": 0}}) == Field(("a",), Exists(False))
    assert parse_filter({"a": {"$size": 2.0}}) == Field(("a",), Size(2))
    assert parse_filter({"a": {"$type": [2, "number", "string"]}}) == Field(
        ("a",), TypeIs(("string", "number"))
    )
    assert parse_filter({"a": {"$not": {"$gt": 1}}}) == Field(("a",), Not(Compare("$gt", 1)))


def test_logical_operators() -> None:
    assert parse_filter({"$or": [{"a": 1}, {"$nor": [{"b": 2}]}]}) == Or(
        (Field(("a",), Eq(1)), Nor((Field(("b",), Eq(2)),)))
    )


def test_elem_match_forms_follow_the_first_key() -> None:
    assert parse_filter({"a": {"$elemMatch": {"$gt": 1}}}) == Field(("a",), ElemMatchValue(Compare("$gt", 1)))
    assert parse_filter({"a": {"$elemMatch": {"b": 1}}}) == Field(
        ("a",), ElemMatchDocument(Field(("b",), Eq(1)))
    )
    assert parse_filter({"a": {"$elemMatch": {"$or": [{"b": 1}]}}}) == Field(
        ("a",), ElemMatchDocument(Or((Field(("b",), Eq(1)),)))
    )
    assert parse_filter({"a": {"$elemMatch": {}}}) == Field(("a",), ElemMatchDocument(And(())))


def test_all_takes_values_and_elem_matches() -> None:
    assert parse_filter({"a": {"$all": [1, [2], {"$elemMatch": {"b": 1}}]}}) == Field(
        ("a",), All((Eq(1), Eq([2]), ElemMatchDocument(Field(("b",), Eq(1)))))
    )


def test_regex_with_options_alongside() -> None:
    parsed = parse_filter({"a": {"$regex": "^x.y$", "$options": "im"}})
    assert isinstance(parsed, Field) and isinstance(parsed.cond, Regex)
    assert parsed.cond.ignore_case and parsed.cond.options == "im"
    assert parsed.cond.translated == "(?:^|(?<=\\u000a))x[^\\u000a]y(?:\\u000a|$)"


@pytest.mark.parametrize(
    ("pattern", "options", "translated"),
    [
        ("abc", "", "abc"),
        ("a.b", "s", "a.b"),
        ("a$", "", "a\\u000a?$"),
        ("(a|b$)|c$ # end", "x", "(?:a|b\\u000a?$)|c\\u000a?$"),
        ("\\d+\\.\\w*", "", "[0-9]+\\u002e[A-Za-z0-9_]*"),
        ("[^a-c\\s]", "", "[^a-c\\u0009-\\u000d ]"),
        ("(?:ab|c){2,3}?", "", "(?:ab|c){2,3}"),
        ("a b # comment\n c", "x", "abc"),
        ("\\x41\\n\\t\\-", "", "A\\u000a\\u0009\\u002d"),
        ("é😀", "", "\\u00e9\\U0001f600"),
    ],
)
def test_regex_translation(pattern: str, options: str, translated: str) -> None:
    parsed = parse_filter({"a": {"$regex": pattern, "$options": options}})
    assert isinstance(parsed, Field) and isinstance(parsed.cond, Regex)
    assert parsed.cond.translated == translated
    re.compile(pattern)  # the subset is valid for Python's re (the oracle's engine) too


# ---------------------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(
    "operator", ["$where", "$function", "$accumulator", "$expr", "$text", "$jsonSchema", "$comment", "$x"]
)
def test_top_level_operators_other_than_and_or_nor_are_refused(operator: str) -> None:
    assert refusal({operator: "anything"}) == f"Unsupported query operator '{operator}'."
    assert refusal({"$and": [{"a": 1}, {operator: {}}]}) == f"Unsupported query operator '{operator}'."


@pytest.mark.parametrize("operator", ["$where", "$mod", "$near", "$bitsAllSet", "$geoWithin", "$foo", "$and"])
def test_unknown_field_operators_are_refused(operator: str) -> None:
    assert refusal({"a": {operator: 1}}) == f"Unsupported query operator '{operator}'."
    assert refusal({"a": {"$not": {operator: 1}}}) == f"Unsupported query operator '{operator}'."
    assert (
        refusal({"a": {"$elemMatch": {"$gt": 1, operator: 1}}}) == f"Unsupported query operator '{operator}'."
    )


@pytest.mark.parametrize("filter_doc", [[], [{"a": 1}], "a", 5, None, True])
def test_a_query_must_be_an_object(filter_doc: Any) -> None:
    assert refusal(filter_doc) == "The query must be a JSON object."


@pytest.mark.parametrize(
    ("filter_doc", "operator"),
    [
        ({"$and": []}, "$and"),
        ({"$or": {}}, "$or"),
        ({"$nor": [1]}, "$nor"),
        ({"$and": [{"a": 1}, []]}, "$and"),
        ({"a": {"$in": 5}}, "$in"),
        ({"a": {"$nin": {"x": 1}}}, "$nin"),
        ({"a": {"$in": [{"$gt": 1}]}}, "$in"),
        ({"a": {"$size": "a"}}, "$size"),
        ({"a": {"$size": -1}}, "$size"),
        ({"a": {"$size": 1.5}}, "$size"),
        ({"a": {"$size": True}}, "$size"),
        ({"a": {"$size": None}}, "$size"),
        ({"a": {"$exists": {}}}, "$exists"),
        ({"a": {"$exists": "yes"}}, "$exists"),
        ({"a": {"$exists": None}}, "$exists"),
        ({"a": {"$gt": {}}}, "$gt"),
        ({"a": {"$lte": [1]}}, "$lte"),
        ({"a": {"$all": 5}}, "$all"),
        ({"a": {"$all": [{"$gt": 1}]}}, "$all"),
        ({"a": {"$all": [{"$elemMatch": {"b": 1}, "$x": 1}]}}, "$all"),
        ({"a": {"$elemMatch": [1]}}, "$elemMatch"),
        ({"a": {"$not": {}}}, "$not"),
        ({"a": {"$not": "x"}}, "$not"),
        ({"a": {"$not": {"b": 1}}}, "$not"),
        ({"a": {"$type": "nope"}}, "$type"),
        ({"a": {"$type": []}}, "$type"),
        ({"a": {"$type": 99}}, "$type"),
        ({"a": {"$type": True}}, "$type"),
        ({"a": {"$regex": 5}}, "$regex"),
        ({"a": {"$regex": "a", "$options": 1}}, "$options"),
        ({"a": {"$regex": "a", "$options": "q"}}, "$options"),
        ({"a": {"$options": "i"}}, "$options"),
    ],
)
def test_malformed_arguments_are_refused_naming_the_operator(filter_doc: dict, operator: str) -> None:
    assert f"'{operator}'" in refusal(filter_doc)


def test_operators_and_field_names_do_not_mix() -> None:
    assert "'b'" in refusal({"a": {"$gt": 1, "b": 2}})


@pytest.mark.parametrize(
    "pattern",
    [
        "(",
        ")",
        "a)",
        "[a",
        "[]",
        "\\",
        "a{256}",
        "a{1,300}",
        "a{3,2}",
        "x{,3}",
        "{",
        "a{x}",
        "*a",
        "a**",
        "a*?+",
        "a++",
        "(?=a)",
        "(?!a)",
        "(?<=a)b",
        "(?i)a",
        "(?P<n>a)",
        "(?>a)",
        "\\1",
        "(a)\\1",
        "\\Z",
        "\\z",
        "\\G",
        "\\p{L}",
        "\\u0041",
        "\\x4",
        "\\x{41}",
        "\\v",
        "\\e",
        "\\cA",
        "\\Q.\\E",
        "[[:alpha:]]",
        "[\\d-z]",
        "[a-\\d]",
        "[z-a]",
        "[\\W]",
        "^*",
        "\\b+",
        "$a",
        "a$b",
        "a$$",
        "(a$)b",
        "(a$)?",
        "(^a)*",
        "(a|\\b){2}",
        "\\b" * 9,
        "(a?){0,17}",
        "((a?){0,8}){0,8}",
        "((a|b){1,16}){1,17}",
        "a?" * 65,
        "a" * 5000,
        "(a{200}){200}",
    ],
)
def test_regexes_outside_the_translatable_subset_are_refused(pattern: str) -> None:
    assert refusal({"a": {"$regex": pattern}}).startswith("Invalid argument for '$regex': ")


def test_unicode_line_separators_are_refused_in_extended_mode() -> None:
    assert "'$regex'" in refusal({"a": {"$regex": "a\u2028b", "$options": "x"}})
    parse_filter({"a": {"$regex": "a\u2028b"}})


@pytest.mark.parametrize(
    "filter_doc",
    [
        {"a\x00b": 1},
        {"a": "x\x00"},
        {"a": {"$regex": "\x00"}},
        {"a": "\ud800"},
        {"a": float("nan")},
        {"a": float("inf")},
        {"a": 10**1000},
        {"a": (1, 2)},
        {"a": {1, 2}},
        {"a": object()},
        {1: 2},
    ],
)
def test_values_outside_json_are_refused(filter_doc: dict) -> None:
    assert refusal(filter_doc).startswith("Invalid query: ")


def test_size_limits() -> None:
    deep: Any = 1
    for _ in range(60):
        deep = [deep]
    assert "nested" in refusal({"a": deep})
    assert "values" in refusal({"a": {"$in": list(range(30_000))}})
    assert "components" in refusal({".".join("a" * 40): 1})
    assert "numeric" in refusal({"a.0.1.2.3.4": 1})
    parse_filter({"a.0.1.2.3": 1})

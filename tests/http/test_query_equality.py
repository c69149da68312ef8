"""Cached query answers follow PostgreSQL's equality: the reproductions of issue 9, over HTTP.

Each case stores a document spelled one way and asks for it spelled another way that PostgreSQL's
jsonb holds equal (or stores it under an empty key that a query path names). The query is read twice
(the second read is a hit), then a write moves the document out of (or a new one into) the answer; the
next read must show the database's answer, not the cached one. The bodies are raw JSON text, because
how the client spells a number is the point.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.support.api import JSON

QUERY = "/v1/api/query"


def _query(http: httpx.Client, body: str) -> tuple[list[Any], str]:
    response = http.post(QUERY, content=body, headers=JSON)
    assert response.status_code == 200, response.text
    return response.json(), response.headers["X-Cache"]


def _create(http: httpx.Client, owner: dict[str, str], body: str) -> dict[str, Any]:
    response = http.post("/v1/api/create", content=body, headers={**owner, **JSON})
    assert response.status_code == 201, response.text
    return response.json()


def _ids(answer: list[Any]) -> set[str]:
    return {doc["@id"] for doc in answer}


def _cached(http: httpx.Client, body: str) -> list[Any]:
    """The answer, read until it is a hit (the first read fills, the second hits)."""
    first, _ = _query(http, body)
    second, status = _query(http, body)
    assert status == "HIT" and second == first
    return second


# (the stored value, a spelling of a value PostgreSQL holds equal) — floats are sent as the shortest
# decimal that reads back as the same double, which is what PostgreSQL compares.
EQUAL_NUMBERS = [
    ("1.152921504606847e+18", "1152921504606847000"),
    ("1152921504606846976.0", "1152921504606847000"),  # 2.0**60, spelled out
    ("1152921504606847000", "1152921504606846976.0"),
    ("1e19", "10000000000000000000"),
    ("10000000000000000000", "1e19"),
    ("5", "5.0"),
    ("1e16", "10000000000000000"),
    ("-0.0", "0"),
    ("0.1", "1e-1"),
    ("9007199254740992", "9007199254740992.0"),  # 2**53
]


@pytest.mark.parametrize(("stored", "asked"), EQUAL_NUMBERS)
def test_a_number_leaving_the_answer_invalidates_a_query_spelled_another_way(
    http: httpx.Client, owner: dict[str, str], stored: str, asked: str
) -> None:
    key = "p" + secrets.token_hex(6)
    created = _create(http, owner, f'{{"{key}": {stored}}}')
    assert _ids(_cached(http, f'{{"{key}": {asked}}}')) == {created["@id"]}
    response = http.put(
        "/v1/api/overwrite", content=f'{{"@id": "{created["@id"]}", "{key}": 3}}', headers={**owner, **JSON}
    )
    assert response.status_code == 200, response.text
    assert _query(http, f'{{"{key}": {asked}}}')[0] == []


@pytest.mark.parametrize(("stored", "asked"), EQUAL_NUMBERS)
def test_a_number_entering_the_answer_invalidates_a_query_spelled_another_way(
    http: httpx.Client, owner: dict[str, str], stored: str, asked: str
) -> None:
    key = "s" + secrets.token_hex(6)
    assert _cached(http, f'{{"{key}": {asked}}}') == []
    created = _create(http, owner, f'{{"{key}": {stored}}}')
    assert _ids(_query(http, f'{{"{key}": {asked}}}')[0]) == {created["@id"]}


# (the document around the value, the query path that reaches it)
EMPTY_KEYS = [
    ('{{"": {v}}}', ""),
    ('{{"": {{"b": {v}}}}}', ".b"),
    ('{{"": {{"": {v}}}}}', "."),
    ('{{"o": {{"": {v}}}}}', "o."),
    ('{{"": [{{"b": {v}}}]}}', ".b"),
    ('{{"a": {{"": {{"": {{"c": {v}}}}}}}}}', "a...c"),
]


@pytest.mark.parametrize(("document", "path"), EMPTY_KEYS)
def test_a_value_under_an_empty_key_invalidates_the_queries_that_reach_it(
    http: httpx.Client, owner: dict[str, str], document: str, path: str
) -> None:
    value = f'"{secrets.token_hex(8)}"'
    asked = f'{{"{path}": {value}}}'
    assert _cached(http, asked) == []
    created = _create(http, owner, document.format(v=value))
    assert _ids(_query(http, asked)[0]) == {created["@id"]}
    response = http.put(
        "/v1/api/overwrite", content=f'{{"@id": "{created["@id"]}", "x": 1}}', headers={**owner, **JSON}
    )
    assert response.status_code == 200, response.text
    assert _query(http, asked)[0] == []


# Every other place where the stamp side and the SQL side could disagree: (the document that matches,
# one that does not, the condition). ``{v}`` is a fresh string value, quoted.
_LONG = "y" * 600
DISAGREEMENTS = {
    "array position": ('{{"a": [{v}]}}', '{{"a": [1, {v}]}}', '{{"a.0": {v}}}'),
    "key containing a dot": ('{{"a": {{"b": {v}}}}}', '{{"a.b": {v}}}', '{{"a.b": {v}}}'),
    "$-prefixed key": ('{{"o": {{"$k": {v}}}}}', '{{"o": {{"k": {v}}}}}', '{{"o.$k": {v}}}'),
    "digits-only key": ('{{"7": {v}}}', '{{"7": 1}}', '{{"7": {v}}}'),
    "digits-only inner key": ('{{"o": {{"1": {v}}}}}', '{{"o": {{"2": {v}}}}}', '{{"o.1": {v}}}'),
    "array position or key": ('{{"o": [0, {v}]}}', '{{"o": [{v}, 0]}}', '{{"o.1": {v}}}'),
    "escaped spelling": ('{{"u": "\\u00e9{w}"}}', '{{"u": "e\\u0301{w}"}}', '{{"u": "\u00e9{w}"}}'),
    "decomposed spelling": ('{{"u": "e\u0301{w}"}}', '{{"u": "\u00e9{w}"}}', '{{"u": "e\\u0301{w}"}}'),
    "minus zero": ('{{"z": -0.0, "t": {v}}}', '{{"z": 1e-300, "t": {v}}}', '{{"z": 0, "t": {v}}}'),
    "string at the cap": (
        f'{{{{"l": "{"y" * 490}{{w}}"}}}}',
        '{{"l": "{w}"}}',
        f'{{{{"l": "{"y" * 490}{{w}}"}}}}',
    ),
    "string beyond the cap": (
        f'{{{{"l": "{_LONG}{{w}}"}}}}',
        '{{"l": "{w}"}}',
        f'{{{{"l": "{_LONG}{{w}}"}}}}',
    ),
    "beyond the leaf cap": (
        "{{" + ", ".join(f'"f{n}": {n}' for n in range(200)) + ', "m": {v}}}',
        '{{"m": 1}}',
        '{{"m": {v}}}',
    ),
    "at the depth cap": ('{{"a": {{"b": {{"c": {{"d": {v}}}}}}}}}', '{{"a": 1}}', '{{"a.b.c.d": {v}}}'),
    "beyond the depth cap": (
        '{{"a": {{"b": {{"c": {{"d": {{"e": {v}}}}}}}}}}}',
        '{{"a": {{"b": {{"c": {{"d": {{"e": 1}}}}}}}}}}',
        '{{"a.b.c.d.e": {v}}}',
    ),
    "$in": ('{{"m": {v}}}', '{{"m": "other"}}', '{{"m": {{"$in": [{v}, "other-too"]}}}}'),
    "$all": ('{{"t": [{v}, "w"]}}', '{{"t": [{v}]}}', '{{"t": {{"$all": [{v}, "w"]}}}}'),
    "$elemMatch": (
        '{{"e": [{{"x": {v}}}]}}',
        '{{"e": [{{"x": 1}}, {v}]}}',
        '{{"e": {{"$elemMatch": {{"x": {v}}}}}}}',
    ),
    "$size": ('{{"s": [{v}, {v}]}}', '{{"s": [{v}]}}', '{{"s": {{"$size": 2}}}}'),
    "$exists": ('{{"x": {v}}}', '{{"y": {v}}}', '{{"x": {{"$exists": true}}}}'),
    "$exists false": ('{{"y": {v}}}', '{{"x": {v}}}', '{{"x": {{"$exists": false}}}}'),
    "$ne": ('{{"n": 1}}', '{{"n": {v}}}', '{{"n": {{"$ne": {v}}}}}'),
    "$not": ('{{"n": 1}}', '{{"n": [2, {v}]}}', '{{"n": {{"$not": {{"$eq": {v}}}}}}}'),
    "$nor": ('{{"n": 1}}', '{{"n": {v}}}', '{{"$nor": [{{"n": {v}}}]}}'),
    "nested arrays": ('{{"na": [[{v}]]}}', '{{"na": [[[{v}]]]}}', '{{"na": [{v}]}}'),
    "array equality": ('{{"q": [{v}, 1]}}', '{{"q": [1, {v}]}}', '{{"q": [{v}, 1]}}'),
    "object equality": (
        '{{"o": {{"a": {v}, "b": 1}}}}',
        '{{"o": {{"a": {v}}}}}',
        '{{"o": {{"b": 1, "a": {v}}}}}',
    ),
}


@pytest.mark.parametrize(("matching", "other", "condition"), DISAGREEMENTS.values(), ids=DISAGREEMENTS.keys())
def test_documents_entering_and_leaving_an_answer_are_seen_at_once(
    http: httpx.Client, owner: dict[str, str], matching: str, other: str, condition: str
) -> None:
    # a key of this test alone, tested for existence (which gives no stamp), so that the answer holds
    # this test's document only and its stamps are the condition's
    own = "own" + secrets.token_hex(6)
    word = secrets.token_hex(6)
    fill = {"v": f'"{word}"', "w": word}
    query = f'{{"$and": [{{"{own}": {{"$exists": true}}}}, {condition.format(**fill)}]}}'

    def state(template: str) -> str:
        return f'{{"{own}": 1, ' + template.format(**fill)[1:]

    def overwrite(template: str) -> None:
        body = '{"@id": "' + created["@id"] + '", ' + state(template)[1:]
        response = http.put("/v1/api/overwrite", content=body, headers={**owner, **JSON})
        assert response.status_code == 200, response.text

    assert _cached(http, query) == []
    created = _create(http, owner, state(matching))
    assert _ids(_query(http, query)[0]) == {created["@id"]}  # it entered
    assert _ids(_cached(http, query)) == {created["@id"]}
    overwrite(other)
    assert _query(http, query)[0] == []  # it left
    assert _cached(http, query) == []
    overwrite(matching)
    assert _ids(_query(http, query)[0]) == {created["@id"]}  # it came back

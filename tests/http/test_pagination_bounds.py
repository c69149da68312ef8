"""``limit`` and ``skip`` of any length: over the caps they are clamped, below 1 the defaults (issue 10, point 2).

Python refuses to convert strings of more than 4,300 digits to an int, which answered 500 on every route
that pages. Each answer with a huge value must equal the answer with the cap (or the default) itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.api import JSON, create
from tests.support.server import RunningServer

GOG = "https://store.rerum.io/v1/id/61043ad4ffce846a83e700dd"
HUGE = "9" * 4301
# (the huge value, the value it must behave as) with the default caps, limit 500 and skip 100000
EQUIVALENTS = [
    ("limit", HUGE, "500"),
    ("limit", "0" * 5000 + "7", "7"),  # leading zeros do not make a number large
    ("limit", "-" + HUGE, "0"),
    ("limit", " +" + HUGE + "abc", "500"),
    ("skip", HUGE, "100000"),
    ("skip", "-" + HUGE, "0"),
    ("skip", HUGE + ".5e3", "100000"),
]


@pytest.fixture(scope="module")
def marker(http: httpx.Client, owner: dict[str, str]) -> str:
    """Three annotations sharing a word that no other test uses, for queries and searches to find."""
    word = "pg" + uuid.uuid4().hex
    for n in range(3):
        create(http, owner, {"type": "Annotation", "marker": word, "n": n, "body": {"value": f"{word} text"}})
    return word


@pytest.fixture(scope="module")
def gog(token_for: Callable[[str], str]) -> dict[str, str]:
    return {"Authorization": "Bearer " + token_for(GOG)}


def _requests(marker: str, gog: dict[str, str]) -> dict[str, tuple[str, str, Any, dict[str, str]]]:
    witness = {"ManuscriptWitness": "https://example.org/witness/" + marker}
    return {
        "query": ("POST", "/v1/api/query", {"marker": marker}, {}),
        "head query": ("HEAD", "/v1/api/query", {"marker": marker}, {}),
        "search": ("POST", "/v1/api/search", {"searchText": marker}, {}),
        "phrase": ("POST", "/v1/api/search/phrase", {"searchText": marker + " text"}, {}),
        "fragments": ("POST", "/gog/fragmentsInManuscript", witness, gog),
        "glosses": ("POST", "/gog/glossesInManuscript", witness, gog),
        "legacy query": ("POST", "/v1/api/getByProperties", {"marker": marker}, {}),
        "legacy query.action": ("POST", "/v1/api/query.action", {"marker": marker}, {}),
        "legacy search.action": ("POST", "/v1/api/search.action", {"searchText": marker}, {}),
    }


ROUTES = sorted(_requests("", {}))


def _page(
    client: httpx.Client, route: tuple[str, str, Any, dict[str, str]], name: str, value: str
) -> httpx.Response:
    method, path, body, headers = route
    return client.request(method, path, params={name: value}, json=body, headers={**headers, **JSON})


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("name", "huge", "same_as"), EQUIVALENTS)
def test_a_limit_or_skip_of_any_length_pages_as_its_clamped_value(
    client: httpx.Client,
    server: RunningServer,
    marker: str,
    gog: dict[str, str],
    route: str,
    name: str,
    huge: str,
    same_as: str,
) -> None:
    assert "RERUM_MAX_QUERY_LIMIT" not in server.env and "RERUM_MAX_QUERY_SKIP" not in server.env
    request = _requests(marker, gog)[route]
    answer = _page(client, request, name, huge)
    expected = _page(client, request, name, same_as)
    assert answer.status_code == expected.status_code < 500, answer.text  # (HEAD of no match: 404)
    assert answer.content == expected.content
    assert answer.headers.get("content-length") == expected.headers.get("content-length")

"""POST /v1/api/search and /search/phrase over HTTP: every indexed text path, ranking, accents, options, paging."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.support.trees import ALLOW, JSON_LD, LD_CONTEXT_LINK, TAIL_400

T = secrets.token_hex(4)  # suffix of this module's words: no other test's documents contain them
SEARCH = "/v1/api/search"
PHRASE = "/v1/api/search/phrase"
NO_TEXT = "You did not provide text to search for in the search request." + TAIL_400
NOT_TEXT = 'The text to search for must be a string: send text/plain or {"searchText": "..."}.' + TAIL_400
BAD_SLOP = "The search option 'slop' must be an integer from 0 to 10." + TAIL_400


def w(word: str) -> str:
    """A word only this module's documents contain."""
    return f"{word}{T}"


def _text(tag: str) -> str:
    return f"{w(tag)} quick {w('brown')} {w('fox')}"


# One document per indexed path: (name, document); each holds the words "<name>T quick brownT foxT".
PATH_FIXTURES: list[tuple[str, dict[str, Any]]] = [
    # Web Annotation / IIIF Presentation 3
    ("bodyvalue", {"type": "Annotation", "body": {"value": _text("bodyvalue")}}),
    ("bodyvaluelist", {"type": "Annotation", "body": [{"value": "x"}, {"value": _text("bodyvaluelist")}]}),
    ("bodyvaluetop", {"type": "Annotation", "bodyValue": _text("bodyvaluetop")}),
    ("itemsbody", {"type": "AnnotationPage", "items": [{"body": {"value": _text("itemsbody")}}]}),
    ("itemsbodyvalue", {"type": "AnnotationPage", "items": [{"bodyValue": _text("itemsbodyvalue")}]}),
    ("annoitems", {"type": "Canvas", "annotations": [{"items": [{"body": {"value": _text("annoitems")}}]}]}),
    ("annoitemsbv", {"type": "Canvas", "annotations": [{"items": [{"bodyValue": _text("annoitemsbv")}]}]}),
    (
        "nested",
        {"type": "Manifest", "items": [{"annotations": [{"items": [{"body": {"value": _text("nested")}}]}]}]},
    ),
    (
        "nestedbv",
        {"type": "Manifest", "items": [{"annotations": [{"items": [{"bodyValue": _text("nestedbv")}]}]}]},
    ),
    # IIIF Presentation 2
    (
        "chars",
        {"@type": "oa:Annotation", "resource": {"@type": "cnt:ContentAsText", "chars": _text("chars")}},
    ),
    ("cntchars", {"@type": "oa:Annotation", "resource": {"cnt:chars": _text("cntchars")}}),
    ("resources", {"@type": "sc:AnnotationList", "resources": [{"resource": {"chars": _text("resources")}}]}),
    (
        "resourcescnt",
        {"@type": "sc:AnnotationList", "resources": [{"resource": {"cnt:chars": _text("resourcescnt")}}]},
    ),
    (
        "othercontent",
        {
            "@type": "sc:Canvas",
            "otherContent": [{"resources": [{"resource": {"chars": _text("othercontent")}}]}],
        },
    ),
    (
        "sequences",
        {
            "@type": "sc:Manifest",
            "sequences": [
                {
                    "canvases": [
                        {"otherContent": [{"resources": [{"resource": {"cnt:chars": _text("sequences")}}]}]}
                    ]
                }
            ],
        },
    ),
]
NOT_INDEXED = {"type": "Annotation", "label": _text("label"), "body": {"text": _text("bodytext")}}


def _bulk(http: httpx.Client, auth: dict[str, str], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = http.post("/v1/api/bulkCreate", json=docs, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def by_path(http: httpx.Client, owner: dict[str, str]) -> dict[str, dict[str, Any]]:
    made = _bulk(http, owner, [doc for _, doc in PATH_FIXTURES] + [NOT_INDEXED])
    return {name: doc for (name, _), doc in zip(PATH_FIXTURES, made, strict=False)}


def search(http: httpx.Client, path: str, body: Any, params: str = "") -> httpx.Response:
    if isinstance(body, str):
        return http.post(path + params, content=body.encode(), headers={"Content-Type": "text/plain"})
    return http.post(path + params, json=body)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [hit["@id"] for hit in response.json()]


# --- every path, words and phrases ---------------------------------------------------------------------


@pytest.mark.parametrize("name", [name for name, _ in PATH_FIXTURES])
def test_text_in_each_indexed_path_is_found_by_a_word_and_by_a_phrase(
    http: httpx.Client, by_path: dict[str, dict[str, Any]], name: str
) -> None:
    expected = [by_path[name]["@id"]]
    assert ids(search(http, SEARCH, {"searchText": w(name)})) == expected
    assert ids(search(http, PHRASE, {"searchText": f"{w(name)} quick {w('brown')}"})) == expected
    assert ids(search(http, PHRASE, f"quick {w('brown')} {w('fox')}")) != []


def test_a_common_word_finds_every_indexed_path_and_nothing_else(
    http: httpx.Client, by_path: dict[str, dict[str, Any]]
) -> None:
    found = ids(search(http, SEARCH, {"searchText": w("fox")}, "?limit=100"))
    assert sorted(found) == sorted(doc["@id"] for doc in by_path.values())
    assert len(found) == len(PATH_FIXTURES)


def test_text_outside_the_indexed_paths_is_not_found(
    http: httpx.Client, by_path: dict[str, dict[str, Any]]
) -> None:
    assert ids(search(http, SEARCH, {"searchText": f"{w('label')} {w('bodytext')}"})) == []


def test_hits_carry_the_ld_headers_and_a_score(
    http: httpx.Client, by_path: dict[str, dict[str, Any]]
) -> None:
    response = search(http, SEARCH, {"searchText": w("chars")})
    assert response.headers["content-type"] == JSON_LD
    assert response.headers["link"] == LD_CONTEXT_LINK
    assert response.headers["allow"] == ALLOW
    (hit,) = response.json()
    assert isinstance(hit["__rerum"]["score"], float) and hit["__rerum"]["score"] > 0
    stored = http.get("/v1/id/" + hit["@id"].rsplit("/", 1)[1]).json()
    assert {k: v for k, v in hit.items() if k != "__rerum"} == {
        k: v for k, v in stored.items() if k != "__rerum"
    }
    assert {k: v for k, v in hit["__rerum"].items() if k != "score"} == stored["__rerum"]


# --- ranking, accents, case --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ranked(http: httpx.Client, owner: dict[str, str]) -> list[dict[str, Any]]:
    """Documents made weakest first, so insertion order alone would list them the wrong way round."""
    x, y = w("rankx"), w("ranky")
    return _bulk(
        http,
        owner,
        [
            {"body": {"value": f"{x} filler words only"}},  # 0: one of the two words
            {"body": {"value": f"{x} a b c d e f g {y}"}},  # 1: both words, far apart
            {"body": {"value": f"{x} {y} and again {x} {y}"}},  # 2: both words, adjacent, twice
        ],
    )


def test_more_matches_rank_first(http: httpx.Client, ranked: list[dict[str, Any]]) -> None:
    response = search(http, SEARCH, {"searchText": f"{w('rankx')} {w('ranky')}"})
    assert ids(response) == [ranked[2]["@id"], ranked[1]["@id"], ranked[0]["@id"]]
    scores = [hit["__rerum"]["score"] for hit in response.json()]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[1] > scores[2]


def test_closer_phrase_matches_rank_first(http: httpx.Client, owner: dict[str, str]) -> None:
    x, y = w("closex"), w("closey")
    far, near = _bulk(http, owner, [{"bodyValue": f"{x} one two {y}"}, {"bodyValue": f"{x} {y}"}])
    response = search(http, PHRASE, {"searchText": f"{x} {y}"})
    assert ids(response) == [near["@id"], far["@id"]]
    assert response.json()[0]["__rerum"]["score"] > response.json()[1]["__rerum"]["score"]


@pytest.fixture(scope="module")
def accented(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    (doc,) = _bulk(http, owner, [{"body": {"value": f"Le Café{T} Crème{T} de Ångström{T}"}}])
    return doc


# (this module's suffix is added in the tests: parameters must be the same in every xdist worker)
@pytest.mark.parametrize("word", ["cafe", "CAFE", "café", "CAFÉ", "creme", "angstrom"])
def test_accents_and_case_are_ignored_in_words(
    http: httpx.Client, accented: dict[str, Any], word: str
) -> None:
    assert ids(search(http, SEARCH, {"searchText": w(word)})) == [accented["@id"]]


@pytest.mark.parametrize("words", ["CAFE creme", "Café CRÈME"])
def test_accents_and_case_are_ignored_in_phrases(
    http: httpx.Client, accented: dict[str, Any], words: str
) -> None:
    text = " ".join(w(word) for word in words.split())
    assert ids(search(http, PHRASE, text)) == [accented["@id"]]


# --- bodies and options --------------------------------------------------------------------------------


def test_text_plain_and_json_bodies_search_alike(
    http: httpx.Client, by_path: dict[str, dict[str, Any]]
) -> None:
    for path, text in ((SEARCH, w("cntchars")), (PHRASE, f"{w('cntchars')} quick")):
        as_text = search(http, path, text)
        as_json = search(http, path, {"searchText": text})
        assert ids(as_text) == ids(as_json) == [by_path["cntchars"]["@id"]]


@pytest.fixture(scope="module")
def gapped(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    (doc,) = _bulk(http, owner, [{"body": {"value": f"{w('gapx')} one two {w('gapy')}"}}])
    return doc


@pytest.mark.parametrize(
    ("options", "found"),
    [
        ({"slop": 0}, False),
        ({"slop": 1}, False),
        ({"slop": 2}, True),
        ({"slop": 10}, True),
        (None, True),
        ({}, True),
    ],
)
def test_phrase_slop_bounds_the_words_between(
    http: httpx.Client, gapped: dict[str, Any], options: dict[str, Any] | None, found: bool
) -> None:
    body: dict[str, Any] = {"searchText": f"{w('gapx')} {w('gapy')}"}
    if options is not None:
        body["options"] = options
    assert ids(search(http, PHRASE, body)) == ([gapped["@id"]] if found else [])


def test_words_in_the_wrong_order_are_no_phrase(http: httpx.Client, gapped: dict[str, Any]) -> None:
    assert ids(search(http, PHRASE, f"{w('gapy')} {w('gapx')}")) == []
    assert ids(search(http, SEARCH, f"{w('gapy')} {w('gapx')}")) == [gapped["@id"]]


@pytest.mark.parametrize(
    "options", [{"slop": -1}, {"slop": 11}, {"slop": "2"}, {"slop": 1.5}, {"slop": True}]
)
def test_a_bad_slop_answers_400(http: httpx.Client, options: dict[str, Any]) -> None:
    response = search(http, PHRASE, {"searchText": "anything", "options": options})
    assert response.status_code == 400
    assert response.text == BAD_SLOP


def test_options_must_be_an_object(http: httpx.Client) -> None:
    response = search(http, PHRASE, {"searchText": "anything", "options": [2]})
    assert response.status_code == 400
    assert response.text == "The search 'options' must be a JSON object." + TAIL_400


@pytest.mark.parametrize("path", [SEARCH, PHRASE])
@pytest.mark.parametrize("body", [{"searchText": ""}, "", {"searchText": "", "options": {"slop": 1}}])
def test_no_text_answers_400(http: httpx.Client, path: str, body: Any) -> None:
    response = search(http, path, body)
    assert response.status_code == 400
    assert response.text == NO_TEXT


@pytest.mark.parametrize("path", [SEARCH, PHRASE])
@pytest.mark.parametrize(
    "body", [{"searchText": 5}, {"searchText": ["a"]}, {"searchText": {"a": "b"}}, ["words"]]
)
def test_text_that_is_not_a_string_answers_400(http: httpx.Client, path: str, body: Any) -> None:
    response = search(http, path, body)
    assert response.status_code == 400
    assert response.text == NOT_TEXT


@pytest.mark.parametrize("path", [SEARCH, PHRASE])
def test_text_without_words_finds_nothing(http: httpx.Client, path: str) -> None:
    response = search(http, path, "?! -- ...")
    assert response.status_code == 200
    assert response.content == b"[]"


# --- paging and methods --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def equals(http: httpx.Client, owner: dict[str, str]) -> list[dict[str, Any]]:
    """Five documents that score the same for one word: ties are listed in insertion order."""
    return _bulk(http, owner, [{"bodyValue": f"{w('tie')} number {n}"} for n in range(5)])


def test_limit_and_skip_page_over_the_ranked_hits(http: httpx.Client, equals: list[dict[str, Any]]) -> None:
    everything = [doc["@id"] for doc in equals]
    assert ids(search(http, SEARCH, w("tie"))) == everything
    assert ids(search(http, SEARCH, w("tie"), "?limit=2&skip=1")) == everything[1:3]
    assert ids(search(http, PHRASE, f"{w('tie')} number", "?limit=2&skip=4")) == everything[4:]
    assert ids(search(http, SEARCH, w("tie"), "?skip=5")) == []


def test_search_needs_json_or_text(http: httpx.Client) -> None:
    response = http.post(
        SEARCH, content=b"a=b", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415


@pytest.mark.parametrize("path", [SEARCH, PHRASE])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD"])
def test_other_methods_answer_405(http: httpx.Client, path: str, method: str) -> None:
    response = http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"

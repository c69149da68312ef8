"""POST|HEAD /v1/api/query over HTTP: shapes, headers, stable paging, refusals, HEAD sizes, cache, fuzzing."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerum_server.auth.local_key import mint_token
from tests.conftest import AGENT_CLAIM, OWNER
from tests.support.database import DatabaseServer
from tests.support.server import RunningServer
from tests.support.trees import ALLOW, JSON, JSON_LD, LD_CONTEXT_LINK, TAIL_400, TAIL_404

QUERY = "/v1/api/query"
MARK = f"query-http-{secrets.token_hex(6)}"  # this module's documents, apart from every other test's
EMPTY = (
    "Detected empty JSON object.  You must provide at least one property in the /query request body JSON."
    + TAIL_400
)
NOT_AN_OBJECT = "The query must be a JSON object (a MongoDB filter), not an array." + TAIL_400
PAGE_SIZE = 510  # more than the limit cap


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as module_client:
        yield module_client


@pytest.fixture(scope="module")
def page_docs(http: httpx.Client, owner: dict[str, str]) -> list[dict[str, Any]]:
    """PAGE_SIZE documents of this module in one group, created in order ``n`` = 0, 1, 2..."""
    body = [{"marker": MARK, "group": "paging", "n": n, "parity": n % 2} for n in range(PAGE_SIZE)]
    response = http.post("/v1/api/bulkCreate", json=body, headers=owner)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def shaped(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    response = http.post(
        "/v1/api/create",
        json={"marker": MARK, "group": "shape", "body": {"value": "shaped"}, "tags": ["a", "b"]},
        headers=owner,
    )
    assert response.status_code == 201
    return response.json()


def query(http: httpx.Client, body: Any, params: str = "") -> httpx.Response:
    return http.post(QUERY + params, json=body)


def ns(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [doc["n"] for doc in response.json()]


# --- results and headers --------------------------------------------------------------------------------


def test_a_match_is_the_negotiated_stored_object_with_ld_headers(
    http: httpx.Client, shaped: dict[str, Any]
) -> None:
    response = query(http, {"marker": MARK, "body.value": "shaped", "tags": "b"})
    assert response.status_code == 200
    assert response.json() == [http.get("/v1/id/" + shaped["@id"].rsplit("/", 1)[1]).json()]
    assert "_id" not in response.json()[0]
    assert response.headers["content-type"] == JSON_LD
    assert response.headers["link"] == LD_CONTEXT_LINK
    assert response.headers["allow"] == ALLOW
    assert response.headers["etag"].startswith('W/"')


def test_no_match_is_an_empty_array_with_ld_headers(http: httpx.Client) -> None:
    response = query(http, {"marker": MARK, "group": "nothing like this"})
    assert response.status_code == 200
    assert response.content == b"[]"
    assert response.headers["content-type"] == JSON_LD


def test_results_are_in_insertion_order_with_default_limit_100(
    http: httpx.Client, page_docs: list[dict[str, Any]]
) -> None:
    assert ns(query(http, {"marker": MARK, "group": "paging"})) == list(range(100))
    assert ns(query(http, {"marker": MARK, "parity": 1})) == list(range(1, 200, 2))


def test_limit_is_capped_at_500_and_skip_pages_deterministically(
    http: httpx.Client, page_docs: list[dict[str, Any]]
) -> None:
    body = {"marker": MARK, "group": "paging"}
    assert ns(query(http, body, "?limit=100000")) == list(range(500))
    assert ns(query(http, body, "?limit=20&skip=500")) == list(range(500, PAGE_SIZE))
    pages = [ns(query(http, body, f"?limit=37&skip={skip}")) for skip in range(0, PAGE_SIZE, 37)]
    assert [n for page in pages for n in page] == list(range(PAGE_SIZE))
    assert ns(query(http, body, "?limit=37&skip=74")) == pages[2]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("?limit=0&skip=abc", list(range(100))),
        ("?limit=-4&skip=-3", list(range(100))),
        ("?limit=3.9&skip=5e2", [5, 6, 7]),
        ("?limit=2abc&skip=12xyz", [12, 13]),
        ("?limit=2&limit=5&skip=1", [1, 2]),
    ],
)
def test_limit_and_skip_are_read_like_parse_int(
    http: httpx.Client, page_docs: list[dict[str, Any]], params: str, expected: list[int]
) -> None:
    assert ns(query(http, {"marker": MARK, "group": "paging"}, params)) == expected


@pytest.fixture(scope="module")
def small_caps(server: RunningServer, test_database: DatabaseServer) -> Iterator[RunningServer]:
    running = RunningServer(workers=1, data_dir=server.data_dir.parent / "query-caps",
                            database_url=test_database.new_database(),
                            env={"RERUM_MAX_QUERY_LIMIT": "5", "RERUM_MAX_QUERY_SKIP": "3"})  # fmt: skip
    yield running
    running.stop()


def test_configured_caps_clamp_limit_and_skip(small_caps: RunningServer) -> None:
    # that server has its own data dir, so its own signing key
    owner = {
        "Authorization": "Bearer " + mint_token(small_caps.data_dir.resolve(), OWNER, agent_claim=AGENT_CLAIM)
    }
    with httpx.Client(base_url=small_caps.url, timeout=30) as caps:
        made = caps.post("/v1/api/bulkCreate", json=[{"g": "caps", "n": n} for n in range(10)], headers=owner)
        assert made.status_code == 201
        assert ns(caps.post(QUERY + "?limit=100&skip=50", json={"g": "caps"})) == [3, 4, 5, 6, 7]
        assert ns(caps.post(QUERY + "?limit=7", json={"g": "caps"})) == [0, 1, 2, 3, 4]


def test_legacy_paths_reach_the_query(http: httpx.Client, page_docs: list[dict[str, Any]]) -> None:
    body = {"marker": MARK, "n": {"$in": [4, 2]}}
    assert ns(http.post("/v1/api/getByProperties?limit=1", json=body)) == [2]
    assert ns(http.post("/v1/api/query.action", json=body)) == [2, 4]


# --- refusals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"content": b"", "headers": {"Content-Type": "application/json"}},
        {"json": {}},
        {"json": []},
        {"content": b"   ", "headers": {"Content-Type": "application/ld+json"}},
    ],
)
def test_an_empty_query_answers_400(http: httpx.Client, request_kwargs: dict[str, Any]) -> None:
    response = http.post(QUERY, **request_kwargs)
    assert response.status_code == 400
    assert response.text == EMPTY


def test_an_array_query_answers_400(http: httpx.Client) -> None:
    response = http.post(QUERY, json=[{"marker": MARK}])
    assert response.status_code == 400
    assert response.text == NOT_AN_OBJECT


@pytest.mark.parametrize(
    ("body", "operator"),
    [
        ({"$where": "this.a == 1"}, "$where"),
        ({"a": {"$function": {"body": "x", "args": [], "lang": "js"}}}, "$function"),
        ({"a": {"$accumulator": {}}}, "$accumulator"),
        ({"$expr": {"$eq": ["$a", 1]}}, "$expr"),
        ({"$text": {"$search": "x"}}, "$text"),
        ({"$jsonSchema": {"required": ["a"]}}, "$jsonSchema"),
        ({"$foo": 1}, "$foo"),
        ({"a": {"$foo": 1}}, "$foo"),
        ({"$or": [{"a": {"$where": "1"}}]}, "$where"),
    ],
)
def test_every_refused_operator_answers_400_naming_it(http: httpx.Client, body: Any, operator: str) -> None:
    response = query(http, body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert f"'{operator}'" in response.text
    assert response.text.endswith(TAIL_400)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"a": {"$in": 5}}, "$in"),
        ({"a": {"$nin": "x"}}, "$nin"),
        ({"a": {"$size": "a"}}, "$size"),
        ({"a": {"$size": -1}}, "$size"),
        ({"a": {"$regex": "("}}, "$regex"),
        ({"a": {"$regex": 5}}, "$regex"),
        ({"a": {"$regex": "x", "$options": "q"}}, "$options"),
        ({"a": {"$options": "i"}}, "$options"),
        ({"a": {"$all": 3}}, "$all"),
        ({"a": {"$elemMatch": 3}}, "$elemMatch"),
        ({"a": {"$type": "nonsense"}}, "$type"),
        ({"a": {"$not": 5}}, "$not"),
        ({"$and": 5}, "$and"),
        ({"$or": []}, "$or"),
        ({"$nor": [1]}, "$nor"),
    ],
)
def test_malformed_operator_arguments_answer_400(http: httpx.Client, body: Any, named: str) -> None:
    response = query(http, body)
    assert response.status_code == 400, response.text
    assert named in response.text
    assert response.text.endswith(TAIL_400)


@pytest.mark.parametrize(
    "body",
    [
        {f"k{i}": i for i in range(16_384)},  # 32,768 bind parameters before: a 503 blaming the connection
        {f"k{i}": f"v{i}" for i in range(1_000)},  # the statement timeout before: a bare 500
        {"marker": {"$all": [f"s{i}" for i in range(2_000)]}},
    ],
    ids=["16384-keys", "1000-keys", "all-2000"],
)
def test_queries_beyond_the_cost_limit_answer_400_naming_it(
    http: httpx.Client, unchanged_database: None, body: dict[str, Any]
) -> None:
    response = query(http, body)
    assert response.status_code == 400, response.text
    assert "more than the limit of 256" in response.text
    assert response.text.endswith(TAIL_400)


def test_a_query_of_many_equalities_answers_the_matching_documents(
    http: httpx.Client, owner: dict[str, str]
) -> None:
    keys = {f"k{i}": f"many-{MARK}-{i}" for i in range(60)}
    made = http.post("/v1/api/bulkCreate", json=[{"marker": MARK, **keys}, {"marker": MARK, "k0": keys["k0"]}],
                     headers=owner)  # fmt: skip
    assert made.status_code == 201, made.text
    response = query(http, {"marker": MARK, **keys})
    assert response.status_code == 200, response.text
    assert [doc["@id"] for doc in response.json()] == [made.json()[0]["@id"]]


def test_the_index_page_lists_the_query_limits(http: httpx.Client) -> None:
    page = http.get("/").text
    for limit in ("20,000 values", "nesting depth 48", "32 path components", "256 tests per document"):
        assert limit in page


def test_query_needs_a_json_content_type(http: httpx.Client) -> None:
    assert http.post(QUERY, content=b'{"a":1}').status_code == 415
    response = http.post(QUERY, content=b"a", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.text == (
        "Unsupported Content-Type: text/plain. This endpoint requires application/json or application/ld+json."
    )


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_other_methods_answer_405(http: httpx.Client, method: str) -> None:
    response = http.request(method, QUERY)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, HEAD"


# --- HEAD -----------------------------------------------------------------------------------------------


def test_head_with_a_body_has_the_length_of_the_post_answer(
    http: httpx.Client, page_docs: list[dict[str, Any]]
) -> None:
    body = {"marker": MARK, "n": {"$lt": 30}}
    posted = query(http, body, "?limit=7&skip=2")
    head = http.request("HEAD", QUERY + "?limit=7&skip=2", json=body)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == JSON
    assert head.headers["content-length"] == str(len(posted.content))
    assert "link" not in head.headers


def test_head_without_a_body_measures_the_first_documents(
    http: httpx.Client, page_docs: list[dict[str, Any]]
) -> None:
    head = http.head(QUERY + "?limit=1")
    assert head.status_code == 200
    assert int(head.headers["content-length"]) > 2
    assert head.headers["content-type"] == JSON


def test_head_without_a_match_answers_404_without_a_body(http: httpx.Client) -> None:
    head = http.request("HEAD", QUERY, json={"marker": MARK, "group": "none at all"})
    assert head.status_code == 404
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(
        "There are no objects in the database matching the query. Check the request body." + TAIL_404
    )


# --- cache ----------------------------------------------------------------------------------------------


def test_the_same_query_is_a_miss_then_a_hit_and_a_write_refreshes_it(
    http: httpx.Client, owner: dict[str, str]
) -> None:
    body = {"marker": MARK, "group": "cached-" + secrets.token_hex(4)}
    first, second = query(http, body), query(http, body)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.content == second.content == b"[]"
    assert http.post("/v1/api/create", json=body, headers=owner).status_code == 201
    third = query(http, body)
    assert third.headers["x-cache"] == "MISS"
    assert [doc["group"] for doc in third.json()] == [body["group"]]


# --- fuzzing --------------------------------------------------------------------------------------------

KEYS = st.sampled_from(
    ["a", "b", "a.b", "a.0", "a.0.b", "marker", "target", "body.value", "__rerum.history.next", "@id", "",
     ".", "a..b", "$", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$size", "$all",
     "$elemMatch", "$regex", "$options", "$not", "$and", "$or", "$nor", "$type", "$where", "$expr", "$mod",
     "$text", "$near", "$comment", "$foo", "é", "a\u0000b"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["(", "[a-", "\\", "a{2,1}", "(?<n>x)", "i", "msx", "q", "string", "number", "array"]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)),
    max_leaves=12,
)
BODIES = st.one_of(st.dictionaries(KEYS, JSON_VALUES, max_size=4), st.lists(JSON_VALUES, max_size=3))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES)
def test_fuzz_random_json_bodies_never_cause_a_server_error(http: httpx.Client, body: Any) -> None:
    raw = json.dumps(body).encode()  # the standard library writes integers beyond 64 bits too
    response = http.post(QUERY + "?limit=3", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 400), (body, response.status_code, response.text)
    if response.status_code == 200:
        assert isinstance(response.json(), list)

"""``GET /v1/openapi.json`` stays true: it lists exactly what the router answers, the index page and
``/v1/api`` list the same endpoints, and schemathesis's generated requests against a live server get
no 5xx (but the documented 501s) and only answers that conform to the document (statuses, media
types, headers, bodies)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis import checks as builtin_checks
from schemathesis.specs.openapi import checks as openapi_checks

from rerum_server.web.openapi import ENDPOINTS, document
from rerum_server.web.routes import ROUTES
from tests.support.api import create, key, uri
from tests.support.server import RunningServer

# The reference's twelve endpoints and texts, copied from the spec (10.1, 12.5).
REFERENCE_MAP = {
    "/create": "POST - Create a new object.",
    "/bulkCreate": "POST - Create multiple new objects in one request.",
    "/update": "PUT - Update the body an existing object.",
    "/bulkUpdate": "PUT - Update multiple existing objects in one request.",
    "/patch": "PATCH - Update the properties of an existing object.",
    "/set": "PATCH - Update the body an existing object by adding a new property.",
    "/unset": "PATCH - Update the body an existing object by removing an existing property.",
    "/delete": "DELETE - Mark an object as deleted.",
    "/query": "POST - Supply a JSON object to match on, and query the db for an array of matches.",
    "/search": "POST - Full-text search across stored objects.",
    "/release": "PATCH - Lock a JSON object from changes and guarantee the content and URI.",
    "/overwrite": "PUT - Update a specific document in place, overwriting the existing body.",
}
ANNOTATION = "http://www.w3.org/ns/anno.jsonld"
HTTP_METHODS = {"get", "head", "post", "put", "patch", "delete", "options", "trace"}


def route_template(pattern: re.Pattern[str]) -> str:
    """``^/v1/id/(?P<id>[^/\\x00]+)/?$`` → ``/v1/id/{id}``."""
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.pattern)
    return path.removeprefix("^").removesuffix("/?$")


def routed_operations() -> set[tuple[str, str]]:
    """Every (path, method) the router answers: its handlers, and HEAD wherever GET is."""
    answered = set()
    for route in ROUTES:
        methods = set(route.handlers) | ({"HEAD"} if "GET" in route.handlers else set())
        answered |= {(route_template(route.pattern), method) for method in methods}
    return answered


def documented_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


@pytest.fixture(scope="module")
def served(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.json()


def test_the_document_lists_exactly_the_routed_paths_and_methods(served: dict[str, Any]) -> None:
    assert served["openapi"] == "3.1.0"
    assert documented_operations(served) == routed_operations()


def test_the_endpoint_list_names_every_operation_but_the_implied_heads(served: dict[str, Any]) -> None:
    listed = {(path, method) for path, method, _summary in ENDPOINTS}
    implied = {(path, "HEAD") for path, method in listed if method == "GET"}
    assert len(listed) == len(ENDPOINTS)
    assert listed | implied == documented_operations(served)


def test_the_served_document_is_the_built_one_for_this_server(
    served: dict[str, Any], server: RunningServer
) -> None:
    assert served == document(server.url)
    assert served["servers"] == [{"url": server.url}]


def test_the_document_is_valid_openapi_and_every_reference_resolves(server: RunningServer) -> None:
    schema = schemathesis.openapi.from_url(server.url + "/v1/openapi.json")
    operations = {result.ok().label for result in schema.get_all_operations()}
    # Loaded from its URL, the document leaves out the GET that serves it (so it is never fuzzed).
    expected = {f"{method} {path}" for path, method in documented_operations(schema.raw_schema)}
    assert operations == expected - {"GET /v1/openapi.json"}


def test_index_page_lists_every_endpoint_and_links_the_openapi_document(http: httpx.Client) -> None:
    page = http.get("/").text
    assert 'href="/v1/openapi.json"' in page
    missing = [(method, path) for path, method, _ in ENDPOINTS if f"<code>{method} {path}</code>" not in page]
    assert missing == []


def test_api_map_keeps_the_reference_greeting_and_endpoints_and_lists_every_endpoint(
    http: httpx.Client,
) -> None:
    body = http.get("/v1/api").json()
    assert body["message"] == (
        "Welcome to v1 in nodeJS!  Below are the available endpoints, used like /v1/api/{endpoint}"
    )
    assert body["endpoints"] == REFERENCE_MAP
    assert list(body["endpoints"]) == list(REFERENCE_MAP)
    assert set(body["allEndpoints"]) == {f"{method} {path}" for path, method, _ in ENDPOINTS}
    assert {"POST /v1/api/search/phrase", "GET /v1/api/cache/stats", "POST /gog/fragmentsInManuscript",
            "GET /client/register"} <= set(body["allEndpoints"])  # fmt: skip
    assert body["openapi"] == "/v1/openapi.json"


# --- schemathesis against the live server ----------------------------------------------------------------

# The document as any server builds it; each test points its operation at the live server. (Not
# schemathesis's pytest plugin: it reads a node attribute that pytest 9 no longer has.)
SCHEMA = schemathesis.openapi.from_dict(document("http://127.0.0.1"))
# 501 is documented RERUM: patch/set/unset of an object that is not RERUM's, and the token helpers of
# a server without an OIDC issuer (as the test server is).
SCHEMA.config.checks.not_a_server_error.expected_statuses = ["2xx", "3xx", "4xx", "501"]
OPERATIONS = sorted(documented_operations(SCHEMA.raw_schema))


def takes_input(path: str, method: str) -> bool:
    """Whether the operation has a body or a query or header parameter, which negative cases break."""
    operation = SCHEMA.raw_schema["paths"][path][method.lower()]
    return "requestBody" in operation or any(p["in"] != "path" for p in operation.get("parameters", []))


def names_an_object(path: str, method: str) -> bool:
    """Whether the operation names a stored object: by ``{id}`` in its path, or by the body's ``@id``."""
    operation = SCHEMA.raw_schema["paths"][path][method.lower()]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    return "{id}" in path or {"required": ["@id"]} in body.get("anyOf", [])


# Random ids name nothing (404) and random bodies no RERUM object (400), so "existing" cases point
# the generated request at a fresh object of the owner's: the success and conflict answers are
# generated too (reads, new versions, overwrites with a stale version, deletes, releases).
EXISTING = "existing"
# Per operation and mode: a few hundred requests in all, the same ones on every run (derandomized).
EXAMPLES = {GenerationMode.POSITIVE: 5, GenerationMode.NEGATIVE: 4, EXISTING: 3}
CASES = (
    [(path, method, GenerationMode.POSITIVE) for path, method in OPERATIONS]
    + [(path, method, GenerationMode.NEGATIVE) for path, method in OPERATIONS if takes_input(path, method)]
    + [(path, method, EXISTING) for path, method in OPERATIONS if names_an_object(path, method)]
)
# What the document promises about every answer. The checks of how strictly the server rejects data
# are left out: RERUM accepts nearly any JSON object, so they would test the generator, not the wire.
CONFORMANCE = [
    builtin_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


def aimed_at(strategy: Any, stored: dict[str, Any]) -> Any:
    """The generated cases with their ``{id}`` (or the body's ``@id``) naming ``stored``."""

    def aim(case: Any) -> Any:
        if "id" in (case.path_parameters or {}):
            case.path_parameters = {**case.path_parameters, "id": key(stored)}
        if isinstance(case.body, dict):
            case.body = {**case.body, "@id": uri(stored)}
        return case

    return strategy.map(aim)


@pytest.mark.parametrize(("path", "method", "mode"), CASES, ids=[f"{m} {p} {g}" for p, m, g in CASES])
def test_generated_requests_get_documented_answers_and_no_server_error(
    path: str, method: str, mode: str, server: RunningServer, http: httpx.Client, owner: dict[str, str]
) -> None:
    operation = SCHEMA[path][method]
    if mode == EXISTING:
        stored = create(http, owner, {"@context": ANNOTATION, "type": "Annotation", "body": {"value": "st"}})
        strategy = aimed_at(operation.as_strategy(), stored)
    else:
        strategy = operation.as_strategy(generation_mode=GenerationMode(mode))
    sent: list[int] = []

    @given(case=strategy)
    @settings(max_examples=EXAMPLES[mode], derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def answers_conform(case: Any) -> None:
        # Every request carries the owner's token: writes are reached, and public reads ignore it.
        case.call_and_validate(base_url=server.url, headers=owner, checks=CONFORMANCE, timeout=30)
        sent.append(1)

    answers_conform()
    assert sent

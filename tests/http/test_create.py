"""POST /v1/api/create: status, body, stored shape, metadata, id negotiation, client ids, slugs, headers."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import OWNER
from tests.support.api import create, get, key
from tests.support.server import RunningServer
from tests.support.trees import (
    ALLOW,
    ANNO,
    CONTAINER_LINK,
    DUPLICATE,
    JSON,
    JSON_LD,
    KNOWN_CONTEXTS,
    RESOURCE_LINK,
    TAIL_400,
    TEXT,
    TIMESTAMP,
    UNKNOWN_CONTEXT,
    hex_id,
    id_prefix,
    stored,
    unique,
)

EMPTY = (
    "Detected empty JSON object.  You must provide at least one property in the /create request body JSON."
)


@pytest.fixture(scope="module")
def slug_holder(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    """An object created with a slug, made before any test of the module fingerprints the database."""
    return create(http, owner, {"name": "slug holder"}, Slug=unique("holder"))


def post(client: httpx.Client, auth: dict[str, str], body: Any, **headers: str) -> httpx.Response:
    return client.post("/v1/api/create", json=body, headers={**auth, **headers})


def test_create_answers_201_with_location_equal_to_the_new_id(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    response = post(client, owner, {"type": "Annotation", "body": {"value": "one"}})
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == body["@id"]
    assert re.fullmatch(re.escape(id_prefix(server)) + "[0-9a-f]{24}", body["@id"])


def test_create_response_body_equals_the_object_read_back_plus_new_obj_state(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    body = post(client, owner, {"type": "Annotation", "motivation": "commenting"}).json()
    new_state = body.pop("new_obj_state")
    assert new_state == body
    assert get(client, body) == body
    assert list(body) == ["@id", "type", "motivation", "__rerum"]


def test_create_writes_fresh_root_metadata_in_reference_key_order(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    meta = post(client, owner, {"label": "meta"}).json()["__rerum"]
    assert list(meta) == [
        "@context", "alpha", "APIversion", "createdAt", "isOverwritten", "isReleased", "history", "releases",
        "generatedBy",
    ]  # fmt: skip
    assert meta["@context"] == (
        server.env.get("RERUM_CONTEXT") or server.env["RERUM_PREFIX"] + "context.json"
    )
    assert meta["alpha"] is True
    assert meta["APIversion"] == server.env.get("RERUM_API_VERSION", "1.1.0")
    assert re.fullmatch(TIMESTAMP, meta["createdAt"])
    assert meta["isOverwritten"] == ""
    assert meta["isReleased"] == ""
    assert meta["history"] == {"prime": "root", "previous": "", "next": []}
    assert meta["releases"] == {"previous": "", "next": [], "replaces": ""}
    assert meta["generatedBy"] == OWNER


def test_create_discards_a_client_supplied_rerum_block_entirely(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    planted = {
        "history": {"prime": "x", "previous": "http://evil.example/1", "extra": 1},
        "releases": {"previous": "http://evil.example/2", "sneaky": True},
        "isReleased": "2020-01-01T00:00:00.000",
        "generatedBy": "http://evil.example/agent",
        "slug": "planted",
        "custom": "kept?",
    }
    created = post(client, owner, {"label": "planted", "__rerum": planted}).json()
    meta = stored(server, created)["__rerum"]
    assert meta["history"] == {"prime": "root", "previous": "", "next": []}
    assert meta["releases"] == {"previous": "", "next": [], "replaces": ""}
    assert meta["isReleased"] == ""
    assert meta["generatedBy"] == OWNER
    assert "slug" not in meta
    assert "custom" not in meta


def test_create_stores_context_first_then_at_id_then_client_keys_then_rerum_and_id(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    body = {"b": 1, "a": 2, "@context": UNKNOWN_CONTEXT, "z": {"nested": True}}
    created = post(client, owner, body).json()
    row = stored(server, created)
    assert list(row) == ["@context", "@id", "b", "a", "z", "__rerum", "_id"]
    assert row["@id"] == id_prefix(server) + row["_id"]
    assert list(created) == ["@context", "@id", "b", "a", "z", "__rerum", "new_obj_state"]


def test_create_replaces_a_client_at_id_with_the_minted_one(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    created = post(client, owner, {"@id": "http://example.org/mine", "label": "x"}).json()
    row = stored(server, created)
    assert row["@id"] == id_prefix(server) + row["_id"]
    assert created["@id"] != "http://example.org/mine"


@pytest.mark.parametrize("context", KNOWN_CONTEXTS, ids=lambda c: str(c)[:40])
def test_create_under_a_known_id_context_answers_with_id_and_stores_at_id(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, context: Any
) -> None:
    response = post(client, owner, {"@context": context, "type": "Annotation"})
    assert response.status_code == 201
    body = response.json()
    row = stored(server, body)
    assert "@id" not in body
    assert body["id"] == id_prefix(server) + row["_id"]
    assert list(body)[:2] == ["@context", "id"]
    assert body["new_obj_state"]["id"] == body["id"]
    assert response.headers["location"] == body["id"]
    assert row["@id"] == body["id"]
    assert "id" not in row
    assert get(client, row["_id"])["id"] == body["id"]


def test_create_under_a_known_id_context_drops_the_client_id_property(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    body = post(
        client, owner, {"@context": ANNO, "id": "http://example.org/anno/1", "type": "Annotation"}
    ).json()
    row = stored(server, body)
    assert body["id"] == id_prefix(server) + row["_id"]
    assert "id" not in row


@pytest.mark.parametrize("context", [None, UNKNOWN_CONTEXT, 5, {"ex": "http://example.org/"}])
def test_create_without_a_known_id_context_answers_with_at_id_and_keeps_a_client_id_as_data(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, context: Any
) -> None:
    request = {"id": "http://example.org/thing/7", "label": "data id"}
    if context is not None:
        request = {"@context": context, **request}
    response = post(client, owner, request)
    body = response.json()
    row = stored(server, body)
    assert body["@id"] == id_prefix(server) + row["_id"]
    assert body["id"] == "http://example.org/thing/7"
    assert row["id"] == "http://example.org/thing/7"
    assert response.headers["location"] == body["@id"]


@pytest.mark.parametrize("case", [str.lower, str.upper], ids=["lower", "upper"])
def test_create_honours_a_24_hex_client_id_in_either_case(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, case: Any
) -> None:
    wanted = case(hex_id())
    body = post(client, owner, {"_id": wanted, "label": "chosen id"}).json()
    assert body["@id"] == id_prefix(server) + wanted
    assert "_id" not in body
    assert stored(server, wanted)["_id"] == wanted
    assert get(client, wanted)["label"] == "chosen id"


@pytest.mark.parametrize("bad_id", ["abc", "0" * 23, "g" * 24, "0" * 25, 123456789012345678901234, None])
def test_create_ignores_a_client_id_that_is_not_24_hex_and_mints_one(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, bad_id: Any
) -> None:
    body = post(client, owner, {"_id": bad_id, "label": "ignored id"}).json()
    row = stored(server, body)
    assert re.fullmatch("[0-9a-f]{24}", row["_id"])
    assert row["_id"] != bad_id
    assert "_id" not in body


def test_create_with_a_client_id_already_used_answers_409(
    client: httpx.Client, owner: dict[str, str], slug_holder: dict[str, Any], unchanged_database: None
) -> None:
    response = post(client, owner, {"_id": key(slug_holder), "label": "duplicate"})
    assert response.status_code == 409
    assert response.headers["content-type"] == TEXT
    assert response.text == DUPLICATE


def test_create_with_a_slug_records_it_last_in_rerum_and_is_readable_by_slug(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    slug = unique("create-slug")
    body = post(client, owner, {"label": "slugged"}, Slug=slug).json()
    assert body["__rerum"]["slug"] == slug
    assert list(body["__rerum"])[-1] == "slug"
    by_slug = get(client, slug)
    assert by_slug == get(client, key(body))
    assert by_slug["@id"] == body["@id"]


def test_create_with_a_slug_already_taken_answers_409_with_the_exact_message(
    client: httpx.Client, owner: dict[str, str], slug_holder: dict[str, Any], unchanged_database: None
) -> None:
    response = post(client, owner, {"label": "second"}, Slug=slug_holder["__rerum"]["slug"])
    assert response.status_code == 409
    assert response.headers["content-type"] == TEXT
    assert response.text == "The id provided already exists.  Please use a different _id or Slug."


def test_create_with_a_slug_equal_to_an_existing_id_answers_409(
    client: httpx.Client, owner: dict[str, str], slug_holder: dict[str, Any], unchanged_database: None
) -> None:
    response = post(client, owner, {"label": "second"}, Slug=key(slug_holder))
    assert response.status_code == 409
    assert response.text == DUPLICATE


@pytest.mark.parametrize("body", [{}, []], ids=["object", "array"])
def test_create_with_an_empty_body_answers_400_with_the_exact_message_and_tail(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None, body: Any
) -> None:
    response = post(client, owner, body)
    assert response.status_code == 400
    assert response.headers["content-type"] == TEXT
    assert response.text == EMPTY + TAIL_400


def test_create_with_a_non_empty_array_body_answers_400_instead_of_storing_index_keys(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None
) -> None:
    response = post(client, owner, [{"label": "in an array"}])
    assert response.status_code == 400
    assert response.text == "The /create request body must be a JSON object, not an array." + TAIL_400


@pytest.mark.parametrize("context", [ANNO, UNKNOWN_CONTEXT, ["x"]])
def test_create_content_type_is_ld_json_when_the_object_has_a_context(
    client: httpx.Client, owner: dict[str, str], context: Any
) -> None:
    response = post(client, owner, {"@context": context, "label": "ld"})
    assert response.headers["content-type"] == JSON_LD


@pytest.mark.parametrize("request_body", [{"label": "plain"}, {"@context": "", "label": "falsy context"}])
def test_create_content_type_is_plain_json_without_a_truthy_context(
    client: httpx.Client, owner: dict[str, str], request_body: dict[str, Any]
) -> None:
    response = post(client, owner, request_body)
    assert response.headers["content-type"] == JSON


@pytest.mark.parametrize(
    "typed",
    [
        {"type": "AnnotationPage"},
        {"type": "oa:AnnotationList"},
        {"type": "Settings"},
        {"@type": "sc:Canvas"},
        {"type": "ItemList"},
        {"type": ["Annotation", "Collection"]},
        {"@type": "Range", "type": "Annotation"},
    ],
    ids=lambda t: str(t),
)
def test_create_of_a_container_type_sends_the_media_type_string_as_link(
    client: httpx.Client, owner: dict[str, str], typed: dict[str, Any]
) -> None:
    response = post(client, owner, {**typed, "label": "container"})
    assert response.headers.get_list("link") == [CONTAINER_LINK]


@pytest.mark.parametrize(
    "typed",
    [
        {},
        {"type": "Annotation"},
        {"type": ["oa:AnnotationList"]},
        {"@type": "Annotation", "type": "Canvas"},
        {"type": {"kind": "Canvas"}},
    ],
    ids=lambda t: str(t),
)
def test_create_of_a_non_container_sends_the_ldp_resource_link(
    client: httpx.Client, owner: dict[str, str], typed: dict[str, Any]
) -> None:
    response = post(client, owner, {**typed, "label": "resource"})
    assert response.status_code == 201
    assert response.headers.get_list("link") == [RESOURCE_LINK]


def test_create_with_a_numeric_type_answers_201_instead_of_the_reference_500(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    response = post(client, owner, {"type": 5})
    assert response.status_code == 201
    assert response.headers.get_list("link") == [RESOURCE_LINK]
    assert client.get(f"/v1/id/{key(response.json())}").status_code == 200


def test_create_sends_the_constant_allow_header(client: httpx.Client, owner: dict[str, str]) -> None:
    response = post(client, owner, {"label": "allow"})
    assert response.headers["allow"] == ALLOW

"""POST /v1/api/bulkCreate and PUT /v1/api/bulkUpdate: status, headers, order, gatekeeping, skipping."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import OWNER, STRANGER
from tests.support.api import create, get, key
from tests.support.server import RunningServer
from tests.support.trees import (
    ANNO,
    DUPLICATE,
    JSON,
    TAIL_400,
    TEXT,
    UNKNOWN_CONTEXT,
    delete,
    hex_id,
    id_prefix,
    stored,
)

NOT_AN_ARRAY = "The request body must be an array of objects." + TAIL_400
EMPTY_ARRAY = "No action on an empty array." + TAIL_400
CREATE_GATE = (
    "All objects in the body of a `/bulkCreate` must be JSON and must not contain a declared identifier property."
    + TAIL_400
)
UPDATE_GATE = (
    "All objects in the body of a `/bulkUpdate` must be JSON and must contain a declared identifier property."
    + TAIL_400
)


@pytest.fixture(scope="module")
def existing(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    """An object made before any test of the module fingerprints the database."""
    return create(http, owner, {"label": "existing"})


@pytest.fixture(scope="module")
def deleted(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    """A deleted object made before any test of the module fingerprints the database."""
    doomed = create(http, owner, {"label": "doomed"})
    delete(http, owner, doomed)
    return doomed


def bulk_create(client: httpx.Client, auth: dict[str, str], body: Any, **headers: str) -> httpx.Response:
    return client.post("/v1/api/bulkCreate", json=body, headers={**auth, **headers})


def bulk_update(client: httpx.Client, auth: dict[str, str], body: Any) -> httpx.Response:
    return client.put("/v1/api/bulkUpdate", json=body, headers=auth)


# --- bulkCreate -----------------------------------------------------------------------------------------


def test_bulk_create_answers_201_json_with_one_bare_link_per_document_in_request_order(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    response = bulk_create(client, owner, [{"n": 1}, {"n": 2}, {"n": 3}])
    assert response.status_code == 201
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert [doc["n"] for doc in body] == [1, 2, 3]
    assert response.headers.get_list("link") == [doc["@id"] for doc in body]
    assert all(doc["@id"].startswith(id_prefix(server)) for doc in body)
    assert len({doc["@id"] for doc in body}) == 3
    assert "location" not in response.headers


def test_bulk_create_documents_are_roots_readable_by_id_without_new_obj_state(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    body = bulk_create(client, owner, [{"label": "a"}, {"label": "b"}]).json()
    for doc in body:
        assert "new_obj_state" not in doc
        assert "_id" not in doc
        assert doc["__rerum"]["history"] == {"prime": "root", "previous": "", "next": []}
        assert doc["__rerum"]["releases"] == {"previous": "", "next": [], "replaces": ""}
        assert doc["__rerum"]["generatedBy"] == OWNER
        assert get(client, doc) == doc


def test_bulk_create_stores_context_first_like_create(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    body = bulk_create(client, owner, [{"b": 1, "@context": UNKNOWN_CONTEXT, "a": 2}]).json()
    assert list(stored(server, body[0])) == ["@context", "@id", "b", "a", "__rerum", "_id"]


def test_bulk_create_negotiates_id_for_known_contexts_per_document(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    body = bulk_create(
        client, owner, [{"@context": ANNO, "type": "Annotation"}, {"type": "Annotation"}]
    ).json()
    known, plain = body
    assert "@id" not in known
    assert known["id"].startswith(id_prefix(server))
    assert "id" not in plain
    assert plain["@id"].startswith(id_prefix(server))


def test_bulk_create_honours_client_ids_and_ignores_slug(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    wanted = hex_id().upper()
    body = bulk_create(
        client, owner, [{"_id": wanted, "n": 1}, {"_id": "short", "n": 2}], Slug="ignored"
    ).json()
    assert body[0]["@id"] == id_prefix(server) + wanted
    assert key(body[1]) != "short"
    assert "slug" not in body[0]["__rerum"]
    assert "slug" not in body[1]["__rerum"]


def test_bulk_create_skips_empty_objects_and_falsy_scalars(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    response = bulk_create(client, owner, [{}, {"n": 1}, 0, False, "", {}, {"n": 2}])
    assert response.status_code == 201
    assert [doc["n"] for doc in response.json()] == [1, 2]
    assert len(response.headers.get_list("link")) == 2


def test_bulk_create_of_only_empty_objects_answers_201_empty_array_and_writes_nothing(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None
) -> None:
    response = bulk_create(client, owner, [{}, {}, 0])
    assert response.status_code == 201
    assert response.json() == []
    assert response.headers.get_list("link") == []


@pytest.mark.parametrize("body", [{"n": 1}, {}], ids=["object", "empty-object"])
def test_bulk_create_of_a_non_array_answers_400_not_an_array(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None, body: Any
) -> None:
    response = bulk_create(client, owner, body)
    assert response.status_code == 400
    assert response.headers["content-type"] == TEXT
    assert response.text == NOT_AN_ARRAY


def test_bulk_create_of_an_empty_array_answers_400_no_action(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None
) -> None:
    response = bulk_create(client, owner, [])
    assert response.status_code == 400
    assert response.text == EMPTY_ARRAY


@pytest.mark.parametrize(
    "bad",
    [
        {"@id": "http://example.org/1"},
        {"@context": ANNO, "id": "http://example.org/1"},
        {"@context": [ANNO], "id": "http://example.org/1"},
        [],
        [{"n": 1}],
        1,
        "x",
        True,
        None,
    ],
    ids=lambda b: repr(b),
)
def test_bulk_create_with_an_identifier_or_non_object_element_answers_400_and_writes_nothing(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None, bad: Any
) -> None:
    response = bulk_create(client, owner, [{"n": 1}, bad])
    assert response.status_code == 400
    assert response.text == CREATE_GATE


def test_bulk_create_keeps_an_id_property_under_an_unknown_context(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    response = bulk_create(client, owner, [{"@context": UNKNOWN_CONTEXT, "id": "http://example.org/data"}])
    assert response.status_code == 201
    assert response.json()[0]["id"] == "http://example.org/data"


def test_bulk_create_with_a_client_id_already_used_answers_409_and_writes_nothing(
    client: httpx.Client, owner: dict[str, str], existing: dict[str, Any], unchanged_database: None
) -> None:
    response = bulk_create(client, owner, [{"n": 1}, {"_id": key(existing), "n": 2}])
    assert response.status_code == 409
    assert response.text == DUPLICATE


def test_bulk_create_with_the_same_client_id_twice_answers_409_and_writes_nothing(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None
) -> None:
    twice = hex_id()
    response = bulk_create(client, owner, [{"_id": twice, "n": 1}, {"_id": twice, "n": 2}])
    assert response.status_code == 409
    assert response.text == DUPLICATE


# --- bulkUpdate -----------------------------------------------------------------------------------------


def test_bulk_update_answers_200_json_with_new_versions_in_request_order_and_links(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    first = create(client, owner, {"n": 1})
    second = create(client, owner, {"n": 2})
    response = bulk_update(client, owner, [{"@id": second["@id"], "n": 20}, {"@id": first["@id"], "n": 10}])
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert [doc["n"] for doc in body] == [20, 10]
    assert response.headers.get_list("link") == [doc["@id"] for doc in body]
    assert [doc["__rerum"]["history"]["previous"] for doc in body] == [second["@id"], first["@id"]]
    assert body[0]["__rerum"]["history"]["prime"] == second["@id"]
    assert stored(server, second)["__rerum"]["history"]["next"] == [body[0]["@id"]]
    assert stored(server, first)["__rerum"]["history"]["next"] == [body[1]["@id"]]
    assert all("new_obj_state" not in doc for doc in body)
    assert "location" not in response.headers


def test_bulk_update_new_versions_follow_update_metadata_rules(
    client: httpx.Client, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    original = create(client, owner, {"n": 1, "keep": "no"}, Slug=f"bulk-{hex_id()}")
    version = bulk_update(client, stranger, [{"@id": original["@id"], "n": 2}]).json()[0]
    assert "keep" not in version
    meta = version["__rerum"]
    assert meta["generatedBy"] == STRANGER
    assert "slug" not in meta
    assert meta["history"] == {"prime": original["@id"], "previous": original["@id"], "next": []}
    assert meta["releases"] == {"previous": "", "next": [], "replaces": ""}


def test_bulk_update_accepts_id_under_a_known_context(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"@context": ANNO, "type": "Annotation"})
    response = bulk_update(client, owner, [{"@context": ANNO, "id": original["id"], "type": "Annotation"}])
    assert response.status_code == 200
    version = response.json()[0]
    assert version["id"] != original["id"]
    assert stored(server, original)["__rerum"]["history"]["next"] == [version["id"]]


def test_bulk_update_of_the_same_original_twice_links_both_new_versions(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"n": 0})
    body = bulk_update(
        client, owner, [{"@id": original["@id"], "n": 1}, {"@id": original["@id"], "n": 2}]
    ).json()
    assert [doc["n"] for doc in body] == [1, 2]
    assert body[0]["@id"] != body[1]["@id"]
    assert stored(server, original)["__rerum"]["history"]["next"] == [body[0]["@id"], body[1]["@id"]]
    for doc in body:
        assert doc["__rerum"]["history"]["previous"] == original["@id"]


def test_bulk_update_of_one_original_by_id_and_by_slug_links_both_new_versions(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    slug = f"bulk-slug-{hex_id()}"
    original = create(client, owner, {"n": 0}, Slug=slug)
    by_slug = id_prefix(server) + slug
    body = bulk_update(client, owner, [{"@id": by_slug, "n": 1}, {"@id": original["@id"], "n": 2}]).json()
    assert stored(server, original)["__rerum"]["history"]["next"] == [body[0]["@id"], body[1]["@id"]]
    assert [doc["__rerum"]["history"]["previous"] for doc in body] == [original["@id"]] * 2


def test_bulk_update_of_a_version_and_its_parent_links_each_to_its_own_parent(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    root = create(client, owner, {"n": 0})
    child = bulk_update(client, owner, [{"@id": root["@id"], "n": 1}]).json()[0]
    body = bulk_update(client, owner, [{"@id": child["@id"], "n": 2}, {"@id": root["@id"], "n": 3}]).json()
    assert stored(server, child)["__rerum"]["history"]["next"] == [body[0]["@id"]]
    assert stored(server, root)["__rerum"]["history"]["next"] == [child["@id"], body[1]["@id"]]
    assert body[0]["__rerum"]["history"]["prime"] == root["@id"]


def test_bulk_update_skips_foreign_unknown_deleted_and_non_string_ids(
    client: httpx.Client,
    owner: dict[str, str],
    server: RunningServer,
    deleted: dict[str, Any],
) -> None:
    original = create(client, owner, {"n": 0})
    response = bulk_update(
        client,
        owner,
        [
            {"@id": "https://elsewhere.example/thing/1", "n": 1},
            {"@id": id_prefix(server) + "0" * 24, "n": 2},
            {"@id": deleted["@id"], "n": 3},
            {"@id": 5, "n": 4},
            {"@id": original["@id"], "n": 5},
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert [doc["n"] for doc in body] == [5]
    assert response.headers.get_list("link") == [body[0]["@id"]]
    assert "__deleted" in stored(server, deleted)


def test_bulk_update_with_every_element_skipped_answers_200_empty_array_and_writes_nothing(
    client: httpx.Client,
    owner: dict[str, str],
    server: RunningServer,
    deleted: dict[str, Any],
    unchanged_database: None,
) -> None:
    response = bulk_update(
        client,
        owner,
        [
            {"@id": "https://elsewhere.example/thing/1"},
            {"@id": id_prefix(server) + "f" * 24},
            {"@id": deleted["@id"]},
        ],
    )
    assert response.status_code == 200
    assert response.json() == []
    assert response.headers.get_list("link") == []


def test_bulk_update_skips_falsy_scalars(client: httpx.Client, owner: dict[str, str]) -> None:
    original = create(client, owner, {"n": 0})
    response = bulk_update(client, owner, [0, {"@id": original["@id"], "n": 1}, "", False])
    assert response.status_code == 200
    assert [doc["n"] for doc in response.json()] == [1]


def test_bulk_update_does_not_import_a_foreign_id(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None
) -> None:
    response = bulk_update(client, owner, [{"@id": "https://elsewhere.example/import/me", "n": 1}])
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize("body", [{"@id": "http://example.org/1"}, {}], ids=["object", "empty-object"])
def test_bulk_update_of_a_non_array_answers_400_not_an_array(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None, body: Any
) -> None:
    response = bulk_update(client, owner, body)
    assert response.status_code == 400
    assert response.text == NOT_AN_ARRAY


def test_bulk_update_of_an_empty_array_answers_400_no_action(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None
) -> None:
    response = bulk_update(client, owner, [])
    assert response.status_code == 400
    assert response.text == EMPTY_ARRAY


@pytest.mark.parametrize(
    "bad",
    [
        {"n": 1},
        {},
        {"@context": UNKNOWN_CONTEXT, "id": "http://example.org/1"},
        {"id": "http://example.org/1"},
        [],
        1,
        "x",
        None,
    ],
    ids=lambda b: repr(b),
)
def test_bulk_update_with_an_element_lacking_an_identifier_answers_400_and_writes_nothing(
    client: httpx.Client, owner: dict[str, str], existing: dict[str, Any], unchanged_database: None, bad: Any
) -> None:
    response = bulk_update(client, owner, [{"@id": existing["@id"], "n": 1}, bad])
    assert response.status_code == 400
    assert response.headers["content-type"] == TEXT
    assert response.text == UPDATE_GATE

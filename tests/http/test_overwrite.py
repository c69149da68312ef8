"""PUT /v1/api/overwrite: in-place replacement, the optimistic version check, refusals."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import OWNER
from tests.support.api import create, get, update
from tests.support.server import RunningServer
from tests.support.trees import (
    ANNO,
    JSON,
    JSON_LD,
    TAIL_400,
    TAIL_404,
    TEXT,
    TIMESTAMP,
    UNKNOWN_CONTEXT,
    delete,
    http_date,
    id_prefix,
    release,
    stored,
    tail_401,
    tail_403,
    unique,
)

NOT_FOUND = "No object with this id could be found in RERUM. Cannot overwrite. "
DELETED = "The object you are trying to overwrite is deleted. "
RELEASED = "The object you are trying to overwrite is released.  Fork with /update to make changes. "
NOT_OWNER = "You are not the generating agent for this object. You cannot overwrite it. Fork with /update to make changes. "


@pytest.fixture(scope="module")
def fresh(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    """A never-overwritten object made before any test of the module fingerprints the database."""
    return create(http, owner, {"label": "fresh"})


@pytest.fixture(scope="module")
def overwritten(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    """An object overwritten once, made before any test fingerprints the database; its stored row."""
    original = create(http, owner, {"label": "v1"})
    response = http.put("/v1/api/overwrite", json={"@id": original["@id"], "label": "v1b"}, headers=owner)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def released(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    original = create(http, owner, {"label": "released"})
    return release(http, owner, original)


@pytest.fixture(scope="module")
def deleted(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    original = create(http, owner, {"label": "deleted"})
    delete(http, owner, original)
    return original


def overwrite(client: httpx.Client, auth: dict[str, str], body: Any, **headers: str) -> httpx.Response:
    return client.put("/v1/api/overwrite", json=body, headers={**auth, **headers})


def test_overwrite_answers_200_with_the_same_id_and_the_new_content_only(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"a": 1, "b": 2})
    response = overwrite(
        client, owner, {"@id": original["@id"], "c": 3, "_id": "ignored", "__rerum": {"x": 1}}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["@id"] == original["@id"]
    assert response.headers["location"] == original["@id"]
    assert response.headers["content-type"] == JSON
    assert list(body) == ["@id", "c", "__rerum", "new_obj_state"]
    new_state = body.pop("new_obj_state")
    assert new_state == body
    row = stored(server, original)
    assert list(row) == ["@id", "c", "__rerum", "_id"]
    assert get(client, original) == body


def test_overwrite_sets_is_overwritten_and_sends_it_as_current_overwritten_version(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"a": 1})
    response = overwrite(client, owner, {"@id": original["@id"], "a": 2})
    version = response.headers["current-overwritten-version"]
    assert re.fullmatch(TIMESTAMP, version)
    assert response.json()["__rerum"]["isOverwritten"] == version
    assert stored(server, original)["__rerum"]["isOverwritten"] == version


def test_overwrite_keeps_history_releases_creation_owner_and_slug(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"a": 1}, Slug=unique("overwrite"))
    child = update(client, owner, {"@id": original["@id"], "a": 2})
    before = stored(server, original)["__rerum"]
    overwrite(client, owner, {"@id": original["@id"], "a": 3})
    after = stored(server, original)["__rerum"]
    assert {k: v for k, v in after.items() if k != "isOverwritten"} == {
        k: v for k, v in before.items() if k != "isOverwritten"
    }
    assert after["history"]["next"] == [child["@id"]]
    assert after["generatedBy"] == OWNER
    assert after["slug"] == before["slug"]


def test_overwrite_takes_the_bodys_context_and_drops_the_originals(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    with_context = create(client, owner, {"@context": UNKNOWN_CONTEXT, "a": 1})
    response = overwrite(client, owner, {"@id": with_context["@id"], "a": 2})
    assert "@context" not in response.json()
    assert response.headers["content-type"] == JSON
    plain = create(client, owner, {"type": "Annotation"})
    response = overwrite(client, owner, {"@context": ANNO, "id": plain["@id"], "type": "Annotation"})
    body = response.json()
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_LD
    assert body["id"] == plain["@id"]
    assert response.headers["location"] == plain["@id"]
    row = stored(server, plain)
    assert list(row) == ["@context", "@id", "type", "__rerum", "_id"]


def test_overwrite_with_if_overwritten_version_empty_matches_a_never_overwritten_object(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    original = create(client, owner, {"a": 1})
    response = overwrite(client, owner, {"@id": original["@id"], "a": 2}, **{"If-Overwritten-Version": ""})
    assert response.status_code == 200


def test_overwrite_with_the_current_version_header_answers_200(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    original = create(client, owner, {"a": 1})
    first = overwrite(client, owner, {"@id": original["@id"], "a": 2})
    token = first.headers["current-overwritten-version"]
    second = overwrite(client, owner, {"@id": original["@id"], "a": 3}, **{"If-Overwritten-Version": token})
    assert second.status_code == 200
    assert second.json()["a"] == 3


def test_overwrite_with_a_stale_version_header_answers_409_with_the_stored_document(
    client: httpx.Client,
    owner: dict[str, str],
    server: RunningServer,
    overwritten: dict[str, Any],
    unchanged_database: None,
) -> None:
    response = overwrite(
        client, owner, {"@id": overwritten["@id"], "label": "lost"}, **{"If-Overwritten-Version": ""}
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert list(body) == ["currentVersion"]
    assert body["currentVersion"] == stored(server, overwritten)
    assert body["currentVersion"]["_id"] == overwritten["@id"].rsplit("/", 1)[1]
    assert body["currentVersion"]["label"] == "v1b"


def test_overwrite_version_check_is_exact_string_equality(
    client: httpx.Client, owner: dict[str, str], overwritten: dict[str, Any], unchanged_database: None
) -> None:
    token = overwritten["__rerum"]["isOverwritten"]
    truncated = token.split(".", 1)[0]
    response = overwrite(client, owner, {"@id": overwritten["@id"]}, **{"If-Overwritten-Version": truncated})
    assert response.status_code == 409


def test_overwrite_without_header_uses_rerum_is_overwritten_from_the_body(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"a": 1})
    stale = overwrite(client, owner, {"@id": original["@id"], "a": 2, "__rerum": {"isOverwritten": "stale"}})
    assert stale.status_code == 409
    assert stale.json()["currentVersion"]["a"] == 1
    matching = overwrite(client, owner, {"@id": original["@id"], "a": 2, "__rerum": {"isOverwritten": ""}})
    assert matching.status_code == 200
    token = matching.headers["current-overwritten-version"]
    again = overwrite(client, owner, {"@id": original["@id"], "a": 3, "__rerum": {"isOverwritten": token}})
    assert again.status_code == 200
    assert stored(server, original)["a"] == 3


def test_overwrite_header_takes_precedence_over_the_body_version(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    original = create(client, owner, {"a": 1})
    body = {"@id": original["@id"], "a": 2, "__rerum": {"isOverwritten": "stale"}}
    assert overwrite(client, owner, body, **{"If-Overwritten-Version": ""}).status_code == 200
    body = {"@id": original["@id"], "a": 3, "__rerum": {"isOverwritten": ""}}
    assert overwrite(client, owner, body, **{"If-Overwritten-Version": "stale"}).status_code == 409


def test_overwrite_of_a_released_object_answers_403(
    client: httpx.Client, owner: dict[str, str], released: dict[str, Any], unchanged_database: None
) -> None:
    response = overwrite(client, owner, {"@id": released["@id"], "label": "x"})
    assert response.status_code == 403
    assert response.headers["content-type"] == TEXT
    assert response.text == RELEASED + tail_403(owner)


def test_overwrite_of_a_released_foreign_object_answers_403_before_the_owner_check(
    client: httpx.Client, stranger: dict[str, str], released: dict[str, Any], unchanged_database: None
) -> None:
    response = overwrite(client, stranger, {"@id": released["@id"], "label": "x"})
    assert response.status_code == 403
    assert response.text == RELEASED + tail_403(stranger)


def test_overwrite_by_a_stranger_answers_401(
    client: httpx.Client, stranger: dict[str, str], fresh: dict[str, Any], unchanged_database: None
) -> None:
    response = overwrite(
        client, stranger, {"@id": fresh["@id"], "label": "x"}, **{"If-Overwritten-Version": "no"}
    )
    assert response.status_code == 401
    assert response.text == NOT_OWNER + tail_401(stranger)


def test_overwrite_of_a_deleted_object_answers_403(
    client: httpx.Client, stranger: dict[str, str], deleted: dict[str, Any], unchanged_database: None
) -> None:
    response = overwrite(client, stranger, {"@id": deleted["@id"], "label": "x"})
    assert response.status_code == 403
    assert response.text == DELETED + tail_403(stranger)


def test_overwrite_of_a_missing_object_answers_404(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, unchanged_database: None
) -> None:
    response = overwrite(client, owner, {"@id": id_prefix(server) + "0" * 24, "label": "x"})
    assert response.status_code == 404
    assert response.text == NOT_FOUND + TAIL_404


def test_overwrite_without_an_id_answers_400(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None
) -> None:
    response = overwrite(client, owner, {"label": "x"})
    assert response.status_code == 400
    assert response.text == "Object in request body must have the property '@id' or 'id'. " + TAIL_400


@pytest.mark.parametrize("bad_id", ["not a url", 7, ["http://example.org/x"]])
def test_overwrite_with_a_non_url_id_answers_400_instead_of_the_reference_500(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None, bad_id: Any
) -> None:
    response = overwrite(client, owner, {"@id": bad_id, "label": "x"})
    assert response.status_code == 400
    assert response.text.startswith("The '@id' or 'id' must be the http(s) URL of a RERUM object. \n")
    assert response.text.endswith(TAIL_400)


def test_get_after_overwrite_shows_the_version_and_last_modified_from_it(
    client: httpx.Client, owner: dict[str, str], overwritten: dict[str, Any]
) -> None:
    response = client.get(f"/v1/id/{overwritten['@id'].rsplit('/', 1)[1]}")
    token = overwritten["__rerum"]["isOverwritten"]
    assert response.headers["current-overwritten-version"] == token
    assert response.headers["last-modified"] == http_date(token)


def test_get_of_a_never_overwritten_object_shows_an_empty_version_and_created_date(
    client: httpx.Client, fresh: dict[str, Any]
) -> None:
    response = client.get(f"/v1/id/{fresh['@id'].rsplit('/', 1)[1]}")
    assert response.headers["current-overwritten-version"] == ""
    assert response.headers["last-modified"] == http_date(fresh["__rerum"]["createdAt"])

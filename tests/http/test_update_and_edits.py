"""PUT /v1/api/update (new versions and imports) and PATCH /v1/api/patch|set|unset."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import OWNER, STRANGER
from tests.support.api import create, get, key, update
from tests.support.server import RunningServer
from tests.support.trees import (
    ALLOW,
    ANNO,
    JSON,
    JSON_LD,
    RESOURCE_LINK,
    TAIL_400,
    TAIL_404,
    TEXT,
    TIMESTAMP,
    UNKNOWN_CONTEXT,
    delete,
    edit,
    hex_id,
    id_prefix,
    release,
    stored,
    tail_403,
)

UPDATE_NOT_FOUND = (
    "Object not in RERUM even though it has a RERUM URI.  Check if it is an authentic RERUM object. "
)
UPDATE_DELETED = "The object you are trying to update is deleted. "
UPDATE_NO_ID = "Object in request body must have an 'id' or '@id' property. "
EDIT_NO_ID = "Object in request body must have the property '@id' or 'id'. "
EDIT_NOT_FOUND = (
    "This object is not from RERUM and will need imported. This is not automated yet. "
    "You can make a new object with create. "
)
EDITS = ["patch", "set", "unset"]


@pytest.fixture(scope="module")
def existing(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    """An object made before any test of the module fingerprints the database; never changed."""
    return create(http, owner, {"@context": UNKNOWN_CONTEXT, "a": 1, "b": 2})


@pytest.fixture(scope="module")
def deleted(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    doomed = create(http, owner, {"a": 1, "b": 2})
    delete(http, owner, doomed)
    return doomed


def put(client: httpx.Client, auth: dict[str, str], body: Any) -> httpx.Response:
    return client.put("/v1/api/update", json=body, headers=auth)


# --- update ---------------------------------------------------------------------------------------------


def test_update_answers_200_with_a_new_id_and_location(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"label": "v1"})
    response = put(client, owner, {"@id": original["@id"], "label": "v2"})
    assert response.status_code == 200
    version = response.json()
    assert version["@id"] != original["@id"]
    assert re.fullmatch(re.escape(id_prefix(server)) + "[0-9a-f]{24}", version["@id"])
    assert response.headers["location"] == version["@id"]
    assert response.headers["content-type"] == JSON
    assert response.headers.get_list("link") == [RESOURCE_LINK]
    assert response.headers["allow"] == ALLOW
    new_state = version.pop("new_obj_state")
    assert new_state == version
    assert get(client, version) == version
    assert get(client, original)["label"] == "v1"


def test_update_has_linked_the_new_version_into_the_parents_history_next_when_it_answers(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"label": "v1"})
    first = update(client, owner, {"@id": original["@id"], "label": "v2"})
    second = update(client, owner, {"@id": original["@id"], "label": "v2b"})
    parent = stored(server, original)["__rerum"]["history"]
    assert parent == {"prime": "root", "previous": "", "next": [first["@id"], second["@id"]]}


def test_update_of_a_root_makes_the_root_prime_and_previous(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    original = create(client, owner, {"label": "v1"})
    version = update(client, owner, {"@id": original["@id"], "label": "v2"})
    assert version["__rerum"]["history"] == {
        "prime": original["@id"],
        "previous": original["@id"],
        "next": [],
    }


def test_update_of_a_non_root_keeps_the_trees_prime(client: httpx.Client, owner: dict[str, str]) -> None:
    root = create(client, owner, {"label": "v1"})
    middle = update(client, owner, {"@id": root["@id"], "label": "v2"})
    leaf = update(client, owner, {"@id": middle["@id"], "label": "v3"})
    assert leaf["__rerum"]["history"] == {"prime": root["@id"], "previous": middle["@id"], "next": []}


def test_update_rebuilds_metadata_fresh_for_the_requesting_agent_without_slug(
    client: httpx.Client, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    original = create(client, owner, {"label": "v1"}, Slug=f"upd-{hex_id()}")
    overwritten = client.put(
        "/v1/api/overwrite", json={"@id": original["@id"], "label": "v1b"}, headers=owner
    )
    assert overwritten.status_code == 200
    meta = update(client, stranger, {"@id": original["@id"], "label": "v2", "__rerum": {"slug": "x"}})[
        "__rerum"
    ]
    assert list(meta) == [
        "@context", "alpha", "APIversion", "createdAt", "isOverwritten", "isReleased", "history", "releases",
        "generatedBy",
    ]  # fmt: skip
    assert meta["generatedBy"] == STRANGER
    assert meta["isOverwritten"] == ""
    assert meta["isReleased"] == ""
    assert meta["releases"] == {"previous": "", "next": [], "replaces": ""}
    assert re.fullmatch(TIMESTAMP, meta["createdAt"])
    assert meta["createdAt"] >= original["__rerum"]["createdAt"]
    assert "slug" not in meta


def test_update_replaces_the_content_entirely(client: httpx.Client, owner: dict[str, str]) -> None:
    original = create(client, owner, {"a": 1, "b": 2})
    version = update(client, owner, {"@id": original["@id"], "b": 3, "c": 4})
    assert {k: v for k, v in version.items() if k not in ("@id", "__rerum", "new_obj_state")} == {
        "b": 3,
        "c": 4,
    }


def test_update_does_not_inherit_the_originals_context(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"@context": ANNO, "type": "Annotation"})
    response = put(client, owner, {"@id": original["id"], "type": "Annotation"})
    version = response.json()
    assert "@context" not in version
    assert "@context" not in stored(server, version)
    assert response.headers["content-type"] == JSON
    assert version["@id"].startswith(id_prefix(server))


def test_update_under_a_known_context_accepts_id_and_answers_with_id(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"@context": ANNO, "type": "Annotation"})
    response = put(client, owner, {"@context": ANNO, "id": original["id"], "type": "Annotation", "n": 2})
    assert response.status_code == 200
    version = response.json()
    assert version["id"] != original["id"]
    assert response.headers["location"] == version["id"]
    assert response.headers["content-type"] == JSON_LD
    assert "id" not in stored(server, version)
    assert stored(server, original)["__rerum"]["history"]["next"] == [version["id"]]


def test_update_mints_a_fresh_id_ignoring_a_client_id(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"n": 1})
    wanted = hex_id()
    version = update(client, owner, {"@id": original["@id"], "_id": wanted, "n": 2})
    assert key(version) != wanted
    assert "_id" not in version
    assert stored(server, version)["_id"] == key(version)


def test_update_by_slug_url_versions_the_slugged_object(client: httpx.Client, owner: dict[str, str]) -> None:
    slug = f"by-slug-{hex_id()}"
    original = create(client, owner, {"n": 1}, Slug=slug)
    version = update(client, owner, {"@id": original["@id"].rsplit("/", 1)[0] + "/" + slug, "n": 2})
    assert version["__rerum"]["history"]["previous"] == original["@id"]


def test_update_of_a_released_object_gets_releases_previous_equal_to_the_parent(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    original = create(client, owner, {"n": 1})
    release(client, owner, original)
    version = update(client, owner, {"@id": original["@id"], "n": 2})
    assert version["__rerum"]["releases"] == {"previous": original["@id"], "next": [], "replaces": ""}
    assert version["__rerum"]["isReleased"] == ""


def test_update_of_a_child_of_a_release_inherits_its_releases_previous(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    root = create(client, owner, {"n": 1})
    release(client, owner, root)
    child = update(client, owner, {"@id": root["@id"], "n": 2})
    grandchild = update(client, owner, {"@id": child["@id"], "n": 3})
    assert grandchild["__rerum"]["releases"]["previous"] == root["@id"]


def test_update_by_a_stranger_of_a_foreign_object_is_allowed(
    client: httpx.Client, owner: dict[str, str], stranger: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"n": 1})
    response = put(client, stranger, {"@id": original["@id"], "n": 2})
    assert response.status_code == 200
    assert response.json()["__rerum"]["generatedBy"] == STRANGER
    assert stored(server, original)["__rerum"]["generatedBy"] == OWNER


def test_update_by_a_stranger_of_a_released_foreign_object_is_allowed(
    client: httpx.Client, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    original = create(client, owner, {"n": 1})
    release(client, owner, original)
    response = put(client, stranger, {"@id": original["@id"], "n": 2})
    assert response.status_code == 200
    assert response.json()["__rerum"]["history"]["previous"] == original["@id"]


def test_update_of_a_non_rerum_id_imports_it_as_a_new_root_with_200(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    external = "https://elsewhere.example/things/42"
    response = put(client, owner, {"@id": external, "label": "imported"})
    assert response.status_code == 200
    imported = response.json()
    assert imported["@id"].startswith(id_prefix(server))
    assert imported["label"] == "imported"
    assert response.headers["location"] == imported["@id"]
    assert imported["new_obj_state"]["@id"] == imported["@id"]
    meta = stored(server, imported)["__rerum"]
    assert meta["history"] == {"prime": "root", "previous": external, "next": []}
    assert meta["releases"] == {"previous": "", "next": [], "replaces": ""}
    assert meta["generatedBy"] == OWNER


def test_update_import_under_a_known_context_drops_the_external_id_property(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    external = "https://elsewhere.example/anno/9"
    response = put(client, owner, {"@context": ANNO, "id": external, "type": "Annotation"})
    assert response.status_code == 200
    imported = response.json()
    row = stored(server, imported)
    assert imported["id"] == id_prefix(server) + row["_id"]
    assert "id" not in row
    assert row["__rerum"]["history"]["previous"] == external


def test_update_of_a_missing_rerum_id_answers_404_and_writes_nothing(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, unchanged_database: None
) -> None:
    response = put(client, owner, {"@id": id_prefix(server) + "0" * 24, "n": 1})
    assert response.status_code == 404
    assert response.headers["content-type"] == TEXT
    assert response.text == UPDATE_NOT_FOUND + TAIL_404


def test_update_of_a_deleted_object_answers_403_and_writes_nothing(
    client: httpx.Client, owner: dict[str, str], deleted: dict[str, Any], unchanged_database: None
) -> None:
    response = put(client, owner, {"@id": deleted["@id"], "n": 1})
    assert response.status_code == 403
    assert response.text == UPDATE_DELETED + tail_403(owner)


@pytest.mark.parametrize("body", [{"n": 1}, {"@id": None, "n": 1}], ids=["absent", "null"])
def test_update_without_an_id_answers_400(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None, body: dict[str, Any]
) -> None:
    response = put(client, owner, body)
    assert response.status_code == 400
    assert response.text == UPDATE_NO_ID + TAIL_400


@pytest.mark.parametrize("bad_id", [5, ["http://example.org/1"], {"x": 1}, True])
def test_update_with_a_non_string_id_answers_400_instead_of_the_reference_500(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None, bad_id: Any
) -> None:
    response = put(client, owner, {"@id": bad_id, "n": 1})
    assert response.status_code == 400
    assert response.text == "The '@id' or 'id' of the object must be a string. " + TAIL_400


# --- patch / set / unset --------------------------------------------------------------------------------


def test_patch_replaces_existing_keys_removes_null_ones_and_ignores_new_ones(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"a": 1, "b": 2, "c": 3})
    response = edit(client, owner, "patch", {"@id": original["@id"], "c": None, "a": 10, "z": 26})
    assert response.status_code == 200
    version = response.json()
    assert version["@id"] != original["@id"]
    assert response.headers["location"] == version["@id"]
    assert list(version) == ["@id", "a", "b", "__rerum", "new_obj_state"]
    assert (version["a"], version["b"]) == (10, 2)
    assert version["__rerum"]["history"] == {
        "prime": original["@id"],
        "previous": original["@id"],
        "next": [],
    }
    assert version["__rerum"]["generatedBy"] == OWNER
    assert stored(server, original)["__rerum"]["history"]["next"] == [version["@id"]]
    assert stored(server, original)["c"] == 3


def test_patch_with_an_unchanged_value_still_makes_a_new_version(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    original = create(client, owner, {"a": 1})
    version = edit(client, owner, "patch", {"@id": original["@id"], "a": 1}).json()
    assert version["@id"] != original["@id"]
    assert version["a"] == 1


def test_patch_keeps_the_originals_context_and_can_change_or_remove_it(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    original = create(client, owner, {"@context": UNKNOWN_CONTEXT, "a": 1})
    kept = edit(client, owner, "patch", {"@id": original["@id"], "a": 2}).json()
    assert kept["@context"] == UNKNOWN_CONTEXT
    changed = edit(
        client, owner, "patch", {"@id": kept["@id"], "@context": "http://example.org/other"}
    ).json()
    assert changed["@context"] == "http://example.org/other"
    removed = edit(client, owner, "patch", {"@id": changed["@id"], "@context": None})
    assert "@context" not in removed.json()
    assert removed.headers["content-type"] == JSON


def test_patch_under_a_known_body_context_ignores_the_id_key(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    original = create(client, owner, {"@context": ANNO, "type": "Annotation", "motivation": "commenting"})
    response = edit(client, owner, "patch", {"@context": ANNO, "id": original["id"], "motivation": "tagging"})
    assert response.status_code == 200
    version = response.json()
    assert version["id"] != original["id"]
    assert version["motivation"] == "tagging"
    assert version["__rerum"]["history"]["previous"] == original["id"]


def test_set_adds_missing_keys_and_ignores_existing_ones(client: httpx.Client, owner: dict[str, str]) -> None:
    original = create(client, owner, {"a": 1})
    response = edit(client, owner, "set", {"@id": original["@id"], "a": 99, "d": 4, "e": None})
    assert response.status_code == 200
    version = response.json()
    assert version["@id"] != original["@id"]
    assert list(version) == ["@id", "a", "d", "e", "__rerum", "new_obj_state"]
    assert (version["a"], version["d"], version["e"]) == (1, 4, None)
    assert version["__rerum"]["history"]["previous"] == original["@id"]


def test_set_can_add_a_context_to_an_object_without_one(client: httpx.Client, owner: dict[str, str]) -> None:
    original = create(client, owner, {"a": 1})
    response = edit(client, owner, "set", {"@id": original["@id"], "@context": UNKNOWN_CONTEXT})
    assert response.json()["@context"] == UNKNOWN_CONTEXT
    assert response.headers["content-type"] == JSON_LD


def test_unset_removes_only_present_keys_sent_as_null(client: httpx.Client, owner: dict[str, str]) -> None:
    original = create(client, owner, {"a": 1, "b": 2, "c": 3})
    response = edit(client, owner, "unset", {"@id": original["@id"], "a": None, "b": 5, "zz": None})
    assert response.status_code == 200
    version = response.json()
    assert list(version) == ["@id", "b", "c", "__rerum", "new_obj_state"]
    assert (version["b"], version["c"]) == (2, 3)
    assert version["__rerum"]["history"]["previous"] == original["@id"]


def test_unset_can_remove_the_context(client: httpx.Client, owner: dict[str, str]) -> None:
    original = create(client, owner, {"@context": UNKNOWN_CONTEXT, "a": 1})
    version = edit(client, owner, "unset", {"@id": original["@id"], "@context": None}).json()
    assert "@context" not in version
    assert version["a"] == 1


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("patch", {"zz": 1, "yy": None}),
        ("patch", {"__rerum": {"isReleased": "now"}, "_id": "x"}),
        ("set", {"a": 5, "b": None}),
        ("set", {}),
        ("unset", {"a": 5, "zz": None}),
        ("unset", {"__rerum": None, "_id": None}),
    ],
    ids=lambda v: str(v),
)
def test_edit_with_nothing_applicable_returns_the_original_and_writes_nothing(
    client: httpx.Client,
    owner: dict[str, str],
    existing: dict[str, Any],
    unchanged_database: None,
    kind: str,
    changes: dict[str, Any],
) -> None:
    response = edit(client, owner, kind, {"@id": existing["@id"], **changes})
    assert response.status_code == 200
    body = response.json()
    new_state = body.pop("new_obj_state")
    assert body == get(client, existing)
    assert new_state == body
    assert response.headers["location"] == existing["@id"]
    assert response.headers["content-type"] == JSON_LD


@pytest.mark.parametrize("kind", EDITS)
def test_edit_by_post_with_method_override_patch_makes_a_new_version(
    client: httpx.Client, owner: dict[str, str], kind: str
) -> None:
    original = create(client, owner, {"a": 1})
    body = {"@id": original["@id"], "a": None if kind == "unset" else 2, "b": 3}
    response = client.post(f"/v1/api/{kind}", json=body, headers={**owner, "X-HTTP-Method-Override": "PATCH"})
    assert response.status_code == 200
    assert response.json()["__rerum"]["history"]["previous"] == original["@id"]


@pytest.mark.parametrize("override", [None, "patch", "PUT"])
@pytest.mark.parametrize("kind", EDITS)
def test_edit_by_post_without_exact_override_answers_405_and_writes_nothing(
    client: httpx.Client,
    owner: dict[str, str],
    existing: dict[str, Any],
    unchanged_database: None,
    kind: str,
    override: str | None,
) -> None:
    headers = owner if override is None else {**owner, "X-HTTP-Method-Override": override}
    response = client.post(
        f"/v1/api/{kind}", json={"@id": existing["@id"], "a": None, "q": 1}, headers=headers
    )
    assert response.status_code == 405
    assert response.content == b""


@pytest.mark.parametrize("kind", EDITS)
def test_edit_of_an_unknown_object_answers_501_on_any_host(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None, kind: str
) -> None:
    response = edit(client, owner, kind, {"@id": "https://elsewhere.example/v1/id/" + "0" * 24, "a": None})
    assert response.status_code == 501
    assert response.headers["content-type"] == TEXT
    assert response.text == EDIT_NOT_FOUND


@pytest.mark.parametrize("kind", EDITS)
def test_edit_of_a_deleted_object_answers_403(
    client: httpx.Client, owner: dict[str, str], deleted: dict[str, Any], unchanged_database: None, kind: str
) -> None:
    response = edit(client, owner, kind, {"@id": deleted["@id"], "a": None, "z": 1})
    assert response.status_code == 403
    assert response.text == UPDATE_DELETED + tail_403(owner)


@pytest.mark.parametrize("kind", EDITS)
def test_edit_without_an_id_answers_400(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None, kind: str
) -> None:
    response = edit(client, owner, kind, {"a": None})
    assert response.status_code == 400
    assert response.text == EDIT_NO_ID + TAIL_400


@pytest.mark.parametrize("bad_id", ["not a url", "ftp://example.org/x", 5, {"x": 1}])
@pytest.mark.parametrize("kind", EDITS)
def test_edit_with_a_non_url_id_answers_400_instead_of_the_reference_500(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None, kind: str, bad_id: Any
) -> None:
    response = edit(client, owner, kind, {"@id": bad_id, "a": None})
    assert response.status_code == 400
    assert response.text.startswith("The '@id' or 'id' must be the http(s) URL of a RERUM object. \n")
    assert response.text.endswith(TAIL_400)


@pytest.mark.parametrize("kind", EDITS)
def test_edit_by_a_stranger_of_a_released_foreign_object_makes_their_own_version(
    client: httpx.Client, owner: dict[str, str], stranger: dict[str, str], server: RunningServer, kind: str
) -> None:
    original = create(client, owner, {"a": 1})
    release(client, owner, original)
    response = edit(
        client, stranger, kind, {"@id": original["@id"], "a": None if kind == "unset" else 2, "b": 3}
    )
    assert response.status_code == 200
    version = response.json()
    assert version["__rerum"]["generatedBy"] == STRANGER
    assert version["__rerum"]["releases"]["previous"] == original["@id"]
    assert stored(server, original)["__rerum"]["history"]["next"] == [version["@id"]]

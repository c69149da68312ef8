"""Version and release trees end to end (spec 3.5), delete and release rules, /history and /since."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import OWNER
from tests.support.api import create, get, key, update
from tests.support.server import RunningServer
from tests.support.trees import (
    DUPLICATE,
    JSON_LD,
    LD_CONTEXT_LINK,
    TAIL_404,
    TEXT,
    TIMESTAMP,
    assert_consistent_trees,
    delete,
    hex_id,
    http_date,
    release,
    stored,
    tail_401,
    tail_403,
    unique,
    walk,
)

DELETE_NOT_FOUND = "No object with this id could be found in RERUM.  Cannot delete."
DELETE_DELETED = "The object you are trying to delete is already deleted. "
DELETE_RELEASED = "The object you are trying to delete is released. Fork to make changes. "
DELETE_NOT_OWNER = "You are not the generating agent for this object and so are not authorized to delete it. "
RELEASE_NOT_FOUND = "No object with this id could be found in RERUM. Cannot release. "
RELEASE_RELEASED = "The object you are trying to release is already released. "
RELEASE_NOT_OWNER = "You are not the generating agent for this object. You cannot release it. "
RELEASE_DELETED = "The object you are trying to release is deleted. "


@pytest.fixture(scope="module")
def released(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    """A released object made before any test of the module fingerprints the database."""
    return release(http, owner, create(http, owner, {"label": "released"}))


@pytest.fixture(scope="module")
def deleted(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    doomed = create(http, owner, {"label": "deleted"})
    delete(http, owner, doomed)
    return doomed


@pytest.fixture(scope="module")
def fresh(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    return create(http, owner, {"label": "fresh"}, Slug=unique("fresh"))


def worked_example(client: httpx.Client, owner: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Spec 3.5: A; B = update(A); C = update(B); D = update(A)."""
    a = create(client, owner, {"label": "A"})
    b = update(client, owner, {"@id": a["@id"], "label": "B"})
    c = update(client, owner, {"@id": b["@id"], "label": "C"})
    d = update(client, owner, {"@id": a["@id"], "label": "D"})
    return {"A": a, "B": b, "C": c, "D": d}


def history_of(server: RunningServer, doc: dict[str, Any]) -> dict[str, Any]:
    return stored(server, doc)["__rerum"]["history"]


def releases_of(server: RunningServer, doc: dict[str, Any]) -> dict[str, Any]:
    return stored(server, doc)["__rerum"]["releases"]


def ids(*docs: dict[str, Any]) -> list[str]:
    return [doc["@id"] for doc in docs]


# --- the worked example ---------------------------------------------------------------------------------


def test_worked_example_versions_record_prime_previous_and_next(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    t = worked_example(client, owner)
    a, b, c, d = (t[name]["@id"] for name in "ABCD")
    assert history_of(server, t["A"]) == {"prime": "root", "previous": "", "next": [b, d]}
    assert history_of(server, t["B"]) == {"prime": a, "previous": a, "next": [c]}
    assert history_of(server, t["C"]) == {"prime": a, "previous": b, "next": []}
    assert history_of(server, t["D"]) == {"prime": a, "previous": a, "next": []}
    assert_consistent_trees(server, [a])


def test_worked_example_history_lists_ancestors_nearest_first(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    t = worked_example(client, owner)
    assert walk(client, "history", t["C"]) == ids(t["B"], t["A"])
    assert walk(client, "history", t["D"]) == ids(t["A"])
    assert walk(client, "history", t["A"]) == []


def test_worked_example_since_lists_descendants_depth_first(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    t = worked_example(client, owner)
    assert walk(client, "since", t["A"]) == ids(t["B"], t["C"], t["D"])
    assert walk(client, "since", t["B"]) == ids(t["C"])
    assert walk(client, "since", t["C"]) == []


def test_history_and_since_answer_negotiated_documents_with_ld_headers(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    t = worked_example(client, owner)
    response = client.get(f"/v1/since/{key(t['B'])}")
    assert response.headers["content-type"] == JSON_LD
    assert response.headers["link"] == LD_CONTEXT_LINK
    assert response.json() == [get(client, t["C"])]
    assert "location" not in response.headers


def test_worked_example_release_of_b_establishes_the_releases_tree(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    t = worked_example(client, owner)
    released_b = release(client, owner, t["B"])
    assert re.fullmatch(TIMESTAMP, released_b["__rerum"]["isReleased"])
    assert stored(server, t["B"])["__rerum"]["isReleased"] == released_b["__rerum"]["isReleased"]
    assert releases_of(server, t["B"]) == {"previous": "", "next": [], "replaces": ""}
    assert releases_of(server, t["C"]) == {"previous": t["B"]["@id"], "next": [], "replaces": ""}
    assert releases_of(server, t["A"]) == {"previous": "", "next": [t["B"]["@id"]], "replaces": ""}
    assert releases_of(server, t["D"]) == {"previous": "", "next": [], "replaces": ""}


def test_worked_example_release_of_c_after_b_keeps_only_nearest_releases_in_next(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    t = worked_example(client, owner)
    release(client, owner, t["B"])
    release(client, owner, t["C"])
    b, c = t["B"]["@id"], t["C"]["@id"]
    assert releases_of(server, t["C"]) == {"previous": b, "next": [], "replaces": b}
    assert releases_of(server, t["B"]) == {"previous": "", "next": [c], "replaces": ""}
    assert releases_of(server, t["A"])["next"] == [b]
    assert stored(server, t["C"])["__rerum"]["isReleased"] != ""


def test_release_of_an_ancestor_after_its_descendant_puts_it_between_root_and_descendant(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    t = worked_example(client, owner)
    release(client, owner, t["C"])
    assert releases_of(server, t["A"])["next"] == [t["C"]["@id"]]
    assert releases_of(server, t["B"])["next"] == [t["C"]["@id"]]
    release(client, owner, t["B"])
    b, c = t["B"]["@id"], t["C"]["@id"]
    assert releases_of(server, t["A"])["next"] == [b]
    assert releases_of(server, t["B"]) == {"previous": "", "next": [c], "replaces": ""}
    assert releases_of(server, t["C"]) == {"previous": b, "next": [], "replaces": ""}


def test_release_on_two_branches_lists_both_in_the_roots_releases_next(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    t = worked_example(client, owner)
    release(client, owner, t["B"])
    release(client, owner, t["D"])
    assert releases_of(server, t["A"])["next"] == [t["B"]["@id"], t["D"]["@id"]]
    assert releases_of(server, t["D"])["replaces"] == ""


def test_worked_example_delete_of_leaf_d_removes_it_from_a_history_next(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    t = worked_example(client, owner)
    release(client, owner, t["B"])
    release(client, owner, t["C"])
    delete(client, owner, t["D"])
    assert history_of(server, t["A"])["next"] == [t["B"]["@id"]]
    assert set(stored(server, t["D"])) == {"@id", "__deleted", "_id"}
    assert walk(client, "since", t["A"]) == ids(t["B"], t["C"])
    assert_consistent_trees(server, [t["A"]["@id"]])


def test_worked_example_delete_of_root_a_makes_b_the_root_and_c_primed_by_b(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    t = worked_example(client, owner)
    release(client, owner, t["B"])
    release(client, owner, t["C"])
    delete(client, owner, t["D"])
    delete(client, owner, t["A"])
    b, c = t["B"]["@id"], t["C"]["@id"]
    assert history_of(server, t["B"]) == {"prime": "root", "previous": "", "next": [c]}
    assert history_of(server, t["C"]) == {"prime": b, "previous": b, "next": []}
    assert walk(client, "history", t["C"]) == [b]
    assert walk(client, "since", t["B"]) == [c]
    assert releases_of(server, t["B"])["next"] == [c]
    assert_consistent_trees(server, [b])


def test_delete_of_a_root_with_two_branches_makes_each_child_the_root_of_its_subtree(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    t = worked_example(client, owner)
    e = update(client, owner, {"@id": t["D"]["@id"], "label": "E"})
    f = update(client, owner, {"@id": e["@id"], "label": "F"})
    delete(client, owner, t["A"])
    b, c, d = t["B"]["@id"], t["C"]["@id"], t["D"]["@id"]
    assert history_of(server, t["B"]) == {"prime": "root", "previous": "", "next": [c]}
    assert history_of(server, t["C"]) == {"prime": b, "previous": b, "next": []}
    assert history_of(server, t["D"]) == {"prime": "root", "previous": "", "next": [e["@id"]]}
    assert history_of(server, e) == {"prime": d, "previous": d, "next": [f["@id"]]}
    assert history_of(server, f) == {"prime": d, "previous": e["@id"], "next": []}
    assert walk(client, "since", t["D"]) == ids(e, f)
    assert walk(client, "history", f) == [e["@id"], d]
    assert_consistent_trees(server, [b, d])


def test_delete_of_an_imported_root_gives_its_child_the_external_previous(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    external = f"https://elsewhere.example/{hex_id()}"
    imported = update(client, owner, {"@id": external, "label": "imported"})
    child = update(client, owner, {"@id": imported["@id"], "label": "child"})
    delete(client, owner, imported)
    assert history_of(server, child) == {"prime": "root", "previous": external, "next": []}


def test_delete_of_a_middle_version_links_its_children_to_its_parent_at_the_end(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    t = worked_example(client, owner)
    c2 = update(client, owner, {"@id": t["B"]["@id"], "label": "C2"})
    delete(client, owner, t["B"])
    a, c, d = t["A"]["@id"], t["C"]["@id"], t["D"]["@id"]
    assert history_of(server, t["A"]) == {"prime": "root", "previous": "", "next": [d, c, c2["@id"]]}
    assert history_of(server, t["C"]) == {"prime": a, "previous": a, "next": []}
    assert history_of(server, c2) == {"prime": a, "previous": a, "next": []}
    assert walk(client, "history", t["C"]) == [a]
    assert walk(client, "since", t["A"]) == [d, c, c2["@id"]]
    assert_consistent_trees(server, [a])


# --- delete rules ---------------------------------------------------------------------------------------


def test_delete_answers_204_without_a_body_and_leaves_a_shell_readable_by_id(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"label": "soon deleted"})
    before = stored(server, original)
    response = client.delete(f"/v1/api/delete/{key(original)}", headers=owner)
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    shell = client.get(f"/v1/id/{key(original)}")
    assert shell.status_code == 200
    body = shell.json()
    assert list(body) == ["@id", "__deleted"]
    assert body["@id"] == original["@id"]
    assert list(body["__deleted"]) == ["object", "deletor", "time"]
    assert body["__deleted"]["object"] == before
    assert body["__deleted"]["object"]["_id"] == key(original)
    assert body["__deleted"]["deletor"] == OWNER
    assert re.fullmatch(TIMESTAMP, body["__deleted"]["time"])
    assert shell.headers["current-overwritten-version"] == ""
    assert shell.headers["last-modified"] == http_date(body["__deleted"]["time"])
    assert stored(server, original) == {**body, "_id": key(original)}


def test_delete_by_slug_deletes_the_slugged_object(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    slug = unique("delete-slug")
    original = create(client, owner, {"label": "slugged"}, Slug=slug)
    delete(client, owner, slug)
    assert "__deleted" in stored(server, original)


def test_delete_of_a_released_object_answers_403(
    client: httpx.Client, owner: dict[str, str], released: dict[str, Any], unchanged_database: None
) -> None:
    response = client.delete(f"/v1/api/delete/{key(released)}", headers=owner)
    assert response.status_code == 403
    assert response.headers["content-type"] == TEXT
    assert response.text == DELETE_RELEASED + tail_403(owner)


def test_delete_of_a_released_foreign_object_answers_403_before_the_owner_check(
    client: httpx.Client, stranger: dict[str, str], released: dict[str, Any], unchanged_database: None
) -> None:
    response = client.delete(f"/v1/api/delete/{key(released)}", headers=stranger)
    assert response.status_code == 403
    assert response.text == DELETE_RELEASED + tail_403(stranger)


def test_delete_by_a_stranger_answers_401(
    client: httpx.Client, stranger: dict[str, str], fresh: dict[str, Any], unchanged_database: None
) -> None:
    response = client.delete(f"/v1/api/delete/{key(fresh)}", headers=stranger)
    assert response.status_code == 401
    assert response.text == DELETE_NOT_OWNER + tail_401(stranger)


@pytest.mark.parametrize("who", ["owner", "stranger"])
def test_delete_of_an_already_deleted_object_answers_403(
    client: httpx.Client, deleted: dict[str, Any], unchanged_database: None, who: str, request: Any
) -> None:
    auth = request.getfixturevalue(who)
    response = client.delete(f"/v1/api/delete/{key(deleted)}", headers=auth)
    assert response.status_code == 403
    assert response.text == DELETE_DELETED + tail_403(auth)


def test_delete_of_a_missing_object_answers_404(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None
) -> None:
    response = client.delete(f"/v1/api/delete/{'0' * 24}", headers=owner)
    assert response.status_code == 404
    assert response.text == DELETE_NOT_FOUND + TAIL_404


# --- release rules --------------------------------------------------------------------------------------


def test_release_answers_200_with_the_released_object_and_new_obj_state(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"label": "to release"})
    response = client.patch(f"/v1/api/release/{key(original)}", headers=owner)
    assert response.status_code == 200
    body = response.json()
    assert response.headers["location"] == original["@id"]
    new_state = body.pop("new_obj_state")
    assert new_state == body
    assert body == get(client, original)
    assert re.fullmatch(TIMESTAMP, body["__rerum"]["isReleased"])
    assert body["__rerum"]["releases"] == {"previous": "", "next": [], "replaces": ""}
    assert stored(server, original)["__rerum"]["createdAt"] == original["__rerum"]["createdAt"]


def test_release_with_a_slug_header_records_the_slug(client: httpx.Client, owner: dict[str, str]) -> None:
    original = create(client, owner, {"label": "release slug"})
    slug = unique("release-slug")
    body = release(client, owner, original, Slug=slug)
    assert body["__rerum"]["slug"] == slug
    assert get(client, slug)["@id"] == original["@id"]


def test_release_by_slug_really_releases_the_object(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    slug = unique("by-slug")
    original = create(client, owner, {"label": "slugged"}, Slug=slug)
    body = release(client, owner, slug)
    assert body["@id"] == original["@id"]
    assert stored(server, original)["__rerum"]["isReleased"] == body["__rerum"]["isReleased"] != ""


def test_release_with_a_taken_slug_answers_409_before_looking_up_the_object(
    client: httpx.Client, owner: dict[str, str], fresh: dict[str, Any], unchanged_database: None
) -> None:
    taken = fresh["__rerum"]["slug"]
    for target in ("0" * 24, key(fresh)):
        response = client.patch(f"/v1/api/release/{target}", headers={**owner, "Slug": taken})
        assert response.status_code == 409
        assert response.text == DUPLICATE


def test_release_with_a_slug_equal_to_an_existing_id_answers_409(
    client: httpx.Client,
    owner: dict[str, str],
    fresh: dict[str, Any],
    released: dict[str, Any],
    unchanged_database: None,
) -> None:
    response = client.patch(f"/v1/api/release/{key(fresh)}", headers={**owner, "Slug": key(released)})
    assert response.status_code == 409
    assert response.text == DUPLICATE


def test_release_of_a_missing_object_answers_404(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None
) -> None:
    response = client.patch(f"/v1/api/release/{'0' * 24}", headers=owner)
    assert response.status_code == 404
    assert response.text == RELEASE_NOT_FOUND + TAIL_404


def test_release_of_a_released_object_answers_403(
    client: httpx.Client, owner: dict[str, str], released: dict[str, Any], unchanged_database: None
) -> None:
    response = client.patch(f"/v1/api/release/{key(released)}", headers=owner)
    assert response.status_code == 403
    assert response.text == RELEASE_RELEASED + tail_403(owner)


def test_release_by_a_stranger_answers_401(
    client: httpx.Client, stranger: dict[str, str], fresh: dict[str, Any], unchanged_database: None
) -> None:
    response = client.patch(f"/v1/api/release/{key(fresh)}", headers=stranger)
    assert response.status_code == 401
    assert response.text == RELEASE_NOT_OWNER + tail_401(stranger)


def test_release_by_a_stranger_of_a_released_object_answers_401_with_both_messages(
    client: httpx.Client, stranger: dict[str, str], released: dict[str, Any], unchanged_database: None
) -> None:
    response = client.patch(f"/v1/api/release/{key(released)}", headers=stranger)
    assert response.status_code == 401
    assert response.text == RELEASE_NOT_OWNER + RELEASE_RELEASED + tail_401(stranger)


def test_release_of_a_deleted_object_answers_403_instead_of_the_reference_500(
    client: httpx.Client, owner: dict[str, str], deleted: dict[str, Any], unchanged_database: None
) -> None:
    response = client.patch(f"/v1/api/release/{key(deleted)}", headers=owner)
    assert response.status_code == 403
    assert response.text == RELEASE_DELETED + tail_403(owner)


# --- history and since errors, HEAD ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["history", "since"])
def test_history_or_since_of_a_missing_id_answers_404_with_the_exact_message(
    client: httpx.Client, kind: str
) -> None:
    response = client.get(f"/v1/{kind}/nothing-here-{kind}")
    assert response.status_code == 404
    assert response.headers["content-type"] == TEXT
    assert response.text == (
        f"Cannot produce a history. There is no object in the database with id 'nothing-here-{kind}'.  "
        "Check the URL." + TAIL_404
    )


@pytest.mark.parametrize("kind", ["history", "since"])
def test_history_or_since_of_a_deleted_object_answers_404_saying_it_is_deleted(
    client: httpx.Client, deleted: dict[str, Any], kind: str
) -> None:
    response = client.get(f"/v1/{kind}/{key(deleted)}")
    assert response.status_code == 404
    assert "is deleted" in response.text
    assert response.text.endswith(TAIL_404)


@pytest.mark.parametrize("kind", ["history", "since"])
def test_history_or_since_by_slug_walks_the_slugged_object(
    client: httpx.Client, owner: dict[str, str], kind: str
) -> None:
    slug = unique("walk")
    root = create(client, owner, {"label": "root"}, Slug=slug)
    child = update(client, owner, {"@id": root["@id"], "label": "child"})
    response = client.get(f"/v1/{kind}/{slug}")
    assert [doc["@id"] for doc in response.json()] == ([] if kind == "history" else [child["@id"]])


@pytest.mark.parametrize("kind", ["history", "since"])
def test_head_of_history_or_since_sends_the_get_headers_without_a_body(
    client: httpx.Client, owner: dict[str, str], kind: str
) -> None:
    t = worked_example(client, owner)
    target = t["C"] if kind == "history" else t["A"]
    got = client.get(f"/v1/{kind}/{key(target)}")
    head = client.head(f"/v1/{kind}/{key(target)}")
    assert head.status_code == 200
    assert head.content == b""
    # per request (x-cache: the first read fills, the second hits)
    volatile = {"date", "x-rerum-worker", "x-cache", "x-request-id"}
    assert {k: v for k, v in head.headers.items() if k not in volatile} == {
        k: v for k, v in got.headers.items() if k not in volatile
    }
    assert int(head.headers["content-length"]) == len(got.content)


@pytest.mark.parametrize("kind", ["history", "since"])
def test_head_of_history_or_since_of_a_missing_id_answers_404_without_a_body(
    client: httpx.Client, kind: str
) -> None:
    response = client.head(f"/v1/{kind}/{'0' * 24}")
    assert response.status_code == 404
    assert response.content == b""

"""Concurrent writes on one version tree: no lost links, atomic version checks, consistent healing.

Each request runs on its own thread with its own httpx.Client (its own connection, warmed up first);
a Barrier releases them together. No sleeps: the server's tree locks are what is being tested.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.api import create, key, update
from tests.support.server import RunningServer
from tests.support.trees import DUPLICATE, assert_consistent_trees, release, stored, unique

Request = Callable[[httpx.Client], httpx.Response]


def together(server: RunningServer, requests: list[Request]) -> list[httpx.Response]:
    """Send every request at once, each from its own thread and connection; responses in request order."""
    barrier = threading.Barrier(len(requests))
    responses: list[httpx.Response | None] = [None] * len(requests)
    failures: list[BaseException] = []

    def run(index: int, request: Request) -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=60) as own:
                assert own.get("/v1/api").status_code == 200  # open the connection before the start line
                barrier.wait(timeout=60)
                responses[index] = request(own)
        except BaseException as exc:  # reported by the main thread
            barrier.abort()
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert all(response is not None for response in responses)
    return [response for response in responses if response is not None]


def test_twenty_concurrent_updates_of_one_object_all_link_into_its_history_next(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"n": -1})
    responses = together(
        server,
        [
            lambda own, n=n: own.put("/v1/api/update", json={"@id": original["@id"], "n": n}, headers=owner)
            for n in range(20)
        ],
    )
    assert [response.status_code for response in responses] == [200] * 20
    versions = [response.json() for response in responses]
    assert [version["n"] for version in versions] == list(range(20))
    new_ids = [version["@id"] for version in versions]
    assert len(set(new_ids)) == 20
    following = stored(server, original)["__rerum"]["history"]["next"]
    assert Counter(following) == Counter(new_ids)
    for version in versions:
        assert stored(server, version)["__rerum"]["history"]["previous"] == original["@id"]
    assert_consistent_trees(server, [original["@id"]])


def test_concurrent_updates_of_different_versions_of_one_tree_link_every_version(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    root = create(client, owner, {"n": 0})
    branches = [update(client, owner, {"@id": root["@id"], "n": n}) for n in range(4)]
    targets = [root, *branches] * 3
    responses = together(
        server,
        [
            lambda own, t=t: own.put("/v1/api/update", json={"@id": t["@id"], "x": 1}, headers=owner)
            for t in targets
        ],
    )
    assert [response.status_code for response in responses] == [200] * len(targets)
    for target in [root, *branches]:
        expected = [r.json()["@id"] for r, t in zip(responses, targets, strict=True) if t is target]
        following = stored(server, target)["__rerum"]["history"]["next"]
        assert set(expected) <= set(following)
    assert_consistent_trees(server, [root["@id"]])


@pytest.mark.parametrize("round_number", range(10))
def test_two_concurrent_overwrites_expecting_the_same_version_let_exactly_one_win(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, round_number: int
) -> None:
    original = create(client, owner, {"round": round_number})
    responses = together(
        server,
        [
            lambda own, who=who: own.put(
                "/v1/api/overwrite",
                json={"@id": original["@id"], "writer": who},
                headers={**owner, "If-Overwritten-Version": ""},
            )
            for who in ("first", "second")
        ],
    )
    assert sorted(response.status_code for response in responses) == [200, 409]
    winner = next(response for response in responses if response.status_code == 200)
    loser = next(response for response in responses if response.status_code == 409)
    row = stored(server, original)
    assert row["writer"] == winner.json()["writer"]
    assert row["__rerum"]["isOverwritten"] == winner.headers["current-overwritten-version"]
    assert loser.json() == {"currentVersion": row}


@pytest.mark.parametrize("round_number", range(10))
def test_concurrent_delete_of_a_root_and_update_of_its_child_leave_one_consistent_tree(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, round_number: int
) -> None:
    root = create(client, owner, {"round": round_number})
    child = update(client, owner, {"@id": root["@id"], "v": "child"})
    deleted, updated = together(
        server,
        [
            lambda own: own.delete(f"/v1/api/delete/{key(root)}", headers=owner),
            lambda own: own.put(
                "/v1/api/update", json={"@id": child["@id"], "v": "grandchild"}, headers=owner
            ),
        ],
    )
    assert (deleted.status_code, updated.status_code) == (204, 200), (deleted.text, updated.text)
    grandchild = updated.json()
    assert "__deleted" in stored(server, root)
    assert stored(server, child)["__rerum"]["history"] == {
        "prime": "root",
        "previous": "",
        "next": [grandchild["@id"]],
    }
    assert stored(server, grandchild)["__rerum"]["history"] == {
        "prime": child["@id"],
        "previous": child["@id"],
        "next": [],
    }
    assert_consistent_trees(server, [child["@id"], grandchild["@id"]])


@pytest.mark.parametrize("round_number", range(5))
def test_concurrent_delete_and_update_of_a_middle_version_leave_one_consistent_tree(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, round_number: int
) -> None:
    root = create(client, owner, {"round": round_number})
    middle = update(client, owner, {"@id": root["@id"], "v": "middle"})
    leaf = update(client, owner, {"@id": middle["@id"], "v": "leaf"})
    deleted, updated = together(
        server,
        [
            lambda own: own.delete(f"/v1/api/delete/{key(middle)}", headers=owner),
            lambda own: own.put("/v1/api/update", json={"@id": middle["@id"], "v": "late"}, headers=owner),
        ],
    )
    assert deleted.status_code == 204
    assert updated.status_code in (200, 403), updated.text
    following = stored(server, root)["__rerum"]["history"]["next"]
    expected = [leaf["@id"]] + ([updated.json()["@id"]] if updated.status_code == 200 else [])
    assert following == expected
    assert_consistent_trees(server, [root["@id"]])


@pytest.mark.parametrize("round_number", range(5))
def test_concurrent_releases_on_one_branch_build_the_same_releases_tree_in_either_order(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, round_number: int
) -> None:
    a = create(client, owner, {"round": round_number})
    b = update(client, owner, {"@id": a["@id"], "v": "B"})
    c = update(client, owner, {"@id": b["@id"], "v": "C"})
    responses = together(
        server, [lambda own, t=t: own.patch(f"/v1/api/release/{key(t)}", headers=owner) for t in (b, c)]
    )
    assert [response.status_code for response in responses] == [200, 200]
    assert stored(server, a)["__rerum"]["releases"]["next"] == [b["@id"]]
    assert stored(server, b)["__rerum"]["releases"]["next"] == [c["@id"]]
    assert stored(server, b)["__rerum"]["releases"]["previous"] == ""
    assert stored(server, c)["__rerum"]["releases"]["previous"] == b["@id"]


def test_concurrent_updates_of_a_released_object_each_get_it_as_releases_previous(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"n": 0})
    release(client, owner, original)
    responses = together(
        server,
        [
            lambda own: own.put("/v1/api/update", json={"@id": original["@id"]}, headers=owner)
            for _ in range(5)
        ],
    )
    assert [response.status_code for response in responses] == [200] * 5
    for response in responses:
        assert response.json()["__rerum"]["releases"]["previous"] == original["@id"]
    assert len(stored(server, original)["__rerum"]["history"]["next"]) == 5


def test_concurrent_creates_with_the_same_slug_let_exactly_one_succeed(
    owner: dict[str, str], server: RunningServer
) -> None:
    slug = unique("race")
    responses = together(
        server,
        [
            lambda own, n=n: own.post("/v1/api/create", json={"n": n}, headers={**owner, "Slug": slug})
            for n in range(10)
        ],
    )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == Counter({201: 1, 409: 9})
    assert {response.text for response in responses if response.status_code == 409} == {DUPLICATE}
    winner: dict[str, Any] = next(r.json() for r in responses if r.status_code == 201)
    with httpx.Client(base_url=server.url) as http:
        assert http.get(f"/v1/id/{slug}").json()["@id"] == winner["@id"]


def test_concurrent_unconditional_overwrites_each_get_a_distinct_version_token(
    client: httpx.Client, owner: dict[str, str], server: RunningServer
) -> None:
    original = create(client, owner, {"n": -1})
    responses = together(
        server,
        [
            lambda own, n=n: own.put(
                "/v1/api/overwrite", json={"@id": original["@id"], "n": n}, headers=owner
            )
            for n in range(20)
        ],
    )
    assert [response.status_code for response in responses] == [200] * 20
    tokens = [response.headers["current-overwritten-version"] for response in responses]
    assert len(set(tokens)) == 20
    row = stored(server, original)
    assert row["__rerum"]["isOverwritten"] == max(tokens)


@pytest.mark.parametrize("round_number", range(5))
def test_concurrent_overwrite_and_update_of_one_object_keep_both_the_content_and_the_link(
    client: httpx.Client, owner: dict[str, str], server: RunningServer, round_number: int
) -> None:
    original = create(client, owner, {"round": round_number, "v": "original"})
    overwritten, updated = together(
        server,
        [
            lambda own: own.put(
                "/v1/api/overwrite", json={"@id": original["@id"], "v": "overwritten"}, headers=owner
            ),
            lambda own: own.put(
                "/v1/api/update", json={"@id": original["@id"], "v": "version"}, headers=owner
            ),
        ],
    )
    assert (overwritten.status_code, updated.status_code) == (200, 200)
    row = stored(server, original)
    assert row["v"] == "overwritten"
    assert row["__rerum"]["isOverwritten"] == overwritten.headers["current-overwritten-version"]
    assert row["__rerum"]["history"]["next"] == [updated.json()["@id"]]

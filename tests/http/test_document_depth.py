"""The document depth limit: a document at the limit lives a whole life, one level more is refused.

The server's own encoder (orjson) refuses values nested more than 254 levels and the server wraps
documents in up to three more (``new_obj_state``, ``__deleted.object``, the array of a query or a
history), so without one limit checked before anything is written, documents near 254 levels were
stored and then broke the answers that showed them (issue 10, point 1).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from rerum_server.web.bodies import MAX_DOCUMENT_DEPTH, TOO_DEEP
from tests.support.api import JSON, create, key, uri
from tests.support.wire import TAIL_400

unchanged = pytest.mark.usefixtures("unchanged_database")


def in_arrays(levels: int) -> Any:
    """A value of ``levels`` nested arrays (0: a scalar)."""
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def in_objects(levels: int) -> Any:
    """A value of ``levels`` nested objects (0: a scalar)."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value


SHAPES = {"arrays": in_arrays, "objects": in_objects}


def send(client: httpx.Client, method: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    # orjson, not httpx's json=: the body is the exact nesting under test, encoded the server's way
    return client.request(method, path, content=orjson.dumps(body), headers={**headers, **JSON})


def depth(value: Any) -> int:
    """Levels of objects and arrays in a value, the document itself being level 1 (a scalar: 0)."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@pytest.fixture(params=sorted(SHAPES))
def nest(request: pytest.FixtureRequest) -> Callable[[int], Any]:
    return SHAPES[request.param]


def test_a_document_at_the_limit_is_created_read_queried_edited_deleted_and_read_after_delete(
    client: httpx.Client, owner: dict[str, str], nest: Callable[[int], Any]
) -> None:
    marker = uuid.uuid4().hex
    deep = nest(MAX_DOCUMENT_DEPTH - 1)  # under a top-level key: the document is at the limit
    body = {"type": "Annotation", "marker": marker, "a": deep}
    assert depth(body) == MAX_DOCUMENT_DEPTH

    created = send(client, "POST", "/v1/api/create", body, owner)
    assert created.status_code == 201, created.text
    first = created.json()
    assert first["a"] == deep and first["new_obj_state"]["a"] == deep
    read = client.get(f"/v1/id/{key(first)}")
    assert read.status_code == 200 and read.json()["a"] == deep

    query = {"marker": marker}
    found = send(client, "POST", "/v1/api/query", query, {})
    assert found.status_code == 200 and [doc["a"] for doc in found.json()] == [deep]
    assert (
        client.request("HEAD", "/v1/api/query", content=orjson.dumps(query), headers=JSON).status_code == 200
    )

    updated = send(client, "PUT", "/v1/api/update", {"@id": uri(first), "marker": marker, "a": deep}, owner)
    assert updated.status_code == 200, updated.text
    version = updated.json()

    overwritten = send(
        client, "PUT", "/v1/api/overwrite", {"@id": uri(version), "marker": marker, "b": deep}, owner
    )
    assert overwritten.status_code == 200, overwritten.text
    stale = send(client, "PUT", "/v1/api/overwrite", {"@id": uri(version), "marker": marker, "c": deep},
                 {**owner, "If-Overwritten-Version": "1999-01-01T00:00:00.000"})  # fmt: skip
    assert stale.status_code == 409, stale.text
    assert stale.json()["currentVersion"]["b"] == deep

    patched = send(client, "PATCH", "/v1/api/patch", {"@id": uri(version), "b": deep}, owner)
    assert patched.status_code == 200, patched.text
    added = send(client, "PATCH", "/v1/api/set", {"@id": uri(patched.json()), "c": deep}, owner)
    assert added.status_code == 200, added.text
    latest = added.json()
    assert latest["b"] == deep and latest["c"] == deep

    bulk = send(client, "POST", "/v1/api/bulkCreate", [{"marker": marker, "a": deep}], owner)
    assert bulk.status_code == 201, bulk.text
    bulk_updated = send(client, "PUT", "/v1/api/bulkUpdate", [{"@id": uri(bulk.json()[0]), "a": deep}], owner)
    assert bulk_updated.status_code == 200, bulk_updated.text

    history = client.get(f"/v1/history/{key(latest)}")
    assert history.status_code == 200 and len(history.json()) == 3  # its ancestors
    for doc in (first, latest):  # a root (its children are healed) and a leaf
        deleted = client.delete(f"/v1/api/delete/{key(doc)}", headers=owner)
        assert deleted.status_code == 204, deleted.text
        shell = client.get(f"/v1/id/{key(doc)}")
        assert shell.status_code == 200, shell.text
        assert "__deleted" in shell.json()
    assert client.get(f"/v1/history/{key(version)}").status_code == 200
    shells = send(client, "POST", "/v1/api/query", {"__deleted.object.marker": marker}, {})
    assert shells.status_code == 200 and len(shells.json()) == 2

    released = send(client, "PATCH", f"/v1/api/release/{key(version)}", {}, owner)
    assert released.status_code == 200, released.text


@pytest.fixture(scope="module")
def target(http: httpx.Client, owner: dict[str, str]) -> dict[str, Any]:
    """A shallow object made before any test fingerprints the database: every edit of it would succeed."""
    return create(http, owner, {"type": "Annotation", "a": 1})


REFUSED = TOO_DEEP + TAIL_400


@pytest.mark.parametrize(
    ("method", "path", "bulk", "declares_id"),
    [
        ("POST", "/v1/api/create", False, False),
        ("POST", "/v1/api/create.action", False, False),
        ("POST", "/v1/api/bulkCreate", True, False),
        ("POST", "/v1/api/batch_create", True, False),
        ("PUT", "/v1/api/update", False, True),
        ("PUT", "/v1/api/bulkUpdate", True, True),
        ("PUT", "/v1/api/overwrite", False, True),
        ("PATCH", "/v1/api/patch", False, True),
        ("PATCH", "/v1/api/set", False, True),
        ("PATCH", "/v1/api/unset", False, True),
    ],
)
@unchanged
def test_one_level_over_the_limit_is_refused_with_400_by_every_write(
    client: httpx.Client,
    owner: dict[str, str],
    target: dict[str, Any],
    nest: Callable[[int], Any],
    method: str,
    path: str,
    bulk: bool,
    declares_id: bool,
) -> None:
    document = {"@id": uri(target)} if declares_id else {"type": "Annotation"}
    document["a"] = 1 if path.endswith("unset") else nest(MAX_DOCUMENT_DEPTH)
    document["b"] = None if path.endswith("unset") else 2
    if path.endswith("unset"):
        document["c"] = nest(MAX_DOCUMENT_DEPTH)
    assert depth(document) == MAX_DOCUMENT_DEPTH + 1
    # in a bulk body the documents are the items: shallow ones first, so each item is checked
    body = [{"a": 1} if not declares_id else {"@id": uri(target), "a": 1}, document] if bulk else document
    response = send(client, method, path, body, owner)
    assert response.status_code == 400, response.text
    assert response.text == REFUSED


@unchanged
def test_release_with_a_too_deep_body_is_refused_with_400(
    client: httpx.Client, owner: dict[str, str], target: dict[str, Any]
) -> None:
    response = send(
        client, "PATCH", f"/v1/api/release/{key(target)}", {"a": in_arrays(MAX_DOCUMENT_DEPTH)}, owner
    )
    assert response.status_code == 400 and response.text == REFUSED


@pytest.mark.parametrize("levels", [253, 254, 255, 1024])
@unchanged
def test_the_depths_of_the_issue_are_refused_before_authentication(client: httpx.Client, levels: int) -> None:
    # `{"a": X}` with X of levels - 1 arrays: 253 was stored and undeletable, 254 stored with a 500,
    # 255-1024 a 500 writing nothing
    # (written out by hand: orjson refuses to encode more than 254 levels)
    body = b'{"type":"Annotation","a":' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"
    response = client.post("/v1/api/create", content=body, headers=JSON)
    assert response.status_code == 400 and response.text == REFUSED

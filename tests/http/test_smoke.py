"""The server answers: endpoint map, create then read back on a new connection."""

from __future__ import annotations

import httpx

from tests.support.api import create, get, key


def test_api_map_lists_the_twelve_endpoints(client: httpx.Client) -> None:
    response = client.get("/v1/api")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert (
        body["message"]
        == "Welcome to v1 in nodeJS!  Below are the available endpoints, used like /v1/api/{endpoint}"
    )
    assert list(body["endpoints"]) == [
        "/create",
        "/bulkCreate",
        "/update",
        "/bulkUpdate",
        "/patch",
        "/set",
        "/unset",
        "/delete",
        "/query",
        "/search",
        "/release",
        "/overwrite",
    ]


def test_created_object_reads_back(client: httpx.Client, owner: dict[str, str]) -> None:
    created = create(client, owner, {"type": "Annotation", "body": {"value": "smoke"}})
    read = get(client, key(created))
    assert read["body"] == {"value": "smoke"}
    assert read["__rerum"]["generatedBy"].endswith("owner0000000000000000001")
    assert "_id" not in read

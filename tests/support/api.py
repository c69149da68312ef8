"""Small helpers for black-box tests: make objects through the real API."""

from __future__ import annotations

from typing import Any

import httpx

JSON = {"Content-Type": "application/json"}


def create(
    client: httpx.Client, auth: dict[str, str], body: dict[str, Any], **headers: str
) -> dict[str, Any]:
    """Create an object and return the response body (asserting 201)."""
    response = client.post("/v1/api/create", json=body, headers={**auth, **headers})
    assert response.status_code == 201, response.text
    return response.json()


def uri(obj: dict[str, Any]) -> str:
    return obj.get("@id") or obj["id"]


def key(obj: dict[str, Any]) -> str:
    return uri(obj).rsplit("/", 1)[1]


def update(client: httpx.Client, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = client.put("/v1/api/update", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def get(client: httpx.Client, obj_or_key: dict[str, Any] | str) -> dict[str, Any]:
    object_key = obj_or_key if isinstance(obj_or_key, str) else key(obj_or_key)
    response = client.get(f"/v1/id/{object_key}")
    assert response.status_code == 200, response.text
    return response.json()

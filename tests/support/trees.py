"""Helpers for black-box tests of writes and version trees: wire literals, stored state, tree invariants."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson

from tests.support.api import key
from tests.support.database import fetch_stored
from tests.support.server import RunningServer

# Literal wire strings of spec 4.1, 4.2 and 12.2, written out here rather than imported from the code under test.
JSON = "application/json; charset=utf-8"
JSON_LD = 'application/ld+json; charset=utf-8; profile="http://www.w3.org/ns/anno.jsonld"'
TEXT = "text/plain; charset=utf-8"
ALLOW = "GET,OPTIONS,HEAD,PUT,PATCH,DELETE,POST"
RESOURCE_LINK = '<http://www.w3.org/ns/ldp#Resource>; rel="type"'
CONTAINER_LINK = 'application/ld+json;charset=utf-8;profile="http://www.w3.org/ns/anno.jsonld"'
LD_CONTEXT_LINK = (
    '<http://store.rerum.io/v1/context.json>; rel="http://www.w3.org/ns/json-ld#context"; '
    'type="application/ld+json"'
)
TAIL_400 = (
    "\nThe body of your request was invalid. Please make sure it is a valid content-type and that the body "
    "matches that type.\nIf the body is JSON, make sure it is valid JSON."
)
TAIL_404 = "\nThe requested web page or resource could not be found."
DUPLICATE = "The id provided already exists.  Please use a different _id or Slug."
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}"

ANNO = "http://www.w3.org/ns/anno.jsonld"
KNOWN_CONTEXTS = [
    "http://www.w3.org/ns/anno.jsonld",
    "http://iiif.io/api/presentation/3/context.json",
    "https://store.rerum.io/v1/context.json",
    "http://www.w3.org/ns/oa.jsonld",
    ["http://www.w3.org/ns/anno.jsonld", {"ex": "http://example.org/"}],
    [{"ex": "http://example.org/"}, "http://iiif.io/api/presentation/3/context.json"],
]
UNKNOWN_CONTEXT = "http://example.org/my-context.jsonld"


def tail_401(auth: dict[str, str]) -> str:
    """The 401 tail for a request that sent ``auth`` as its Authorization header."""
    token = auth["Authorization"][:15]
    return (
        "\nThe token provided is Unauthorized.  Please check that it is your token and that it is not expired. "
        f"\nToken: {token}... "
    )


def tail_403(auth: dict[str, str]) -> str:
    """The 403 tail for a request that sent ``auth`` as its Authorization header."""
    return f"\nYou are Forbidden from performing this action.  Check your privileges.\nToken: {auth['Authorization'][:15]}..."


def hex_id() -> str:
    """A fresh 24-hex ObjectId-shaped id (random, so session-shared databases never collide)."""
    return secrets.token_hex(12)


def unique(prefix: str) -> str:
    """A slug no other test uses."""
    return f"{prefix}-{secrets.token_hex(6)}"


def id_prefix(server: RunningServer) -> str:
    return server.env["RERUM_ID_PREFIX"]


def stored(server: RunningServer, obj_or_key: dict[str, Any] | str) -> dict[str, Any]:
    """The stored row of an object (by response body or ``_id``), asserting it exists."""
    object_key = obj_or_key if isinstance(obj_or_key, str) else key(obj_or_key)
    doc = fetch_stored(server.env["DATABASE_URL"], object_key)
    assert doc is not None, f"no stored document {object_key}"
    return doc


def all_stored(server: RunningServer) -> list[dict[str, Any]]:
    """Every stored document, in insertion order."""

    async def run() -> list[dict[str, Any]]:
        connection = await asyncpg.connect(server.env["DATABASE_URL"])
        try:
            rows = await connection.fetch("SELECT body FROM rerum_objects ORDER BY seq")
        finally:
            await connection.close()
        return [orjson.loads(row["body"]) for row in rows]

    return asyncio.run(run())


def http_date(timestamp: str) -> str:
    """RFC 1123 form of a RERUM timestamp read as UTC (what Last-Modified carries)."""
    moment = datetime.strptime(timestamp.split(".", 1)[0], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


def walk(client: httpx.Client, kind: str, obj: dict[str, Any]) -> list[str]:
    """The ``@id``s (or ``id``s) that ``/v1/history`` or ``/v1/since`` lists for an object, in order."""
    response = client.get(f"/v1/{kind}/{key(obj)}")
    assert response.status_code == 200, response.text
    return [item.get("@id") or item["id"] for item in response.json()]


def edit(client: httpx.Client, auth: dict[str, str], kind: str, body: dict[str, Any]) -> httpx.Response:
    """PATCH one of /patch, /set, /unset."""
    return client.patch(f"/v1/api/{kind}", json=body, headers=auth)


def release(
    client: httpx.Client, auth: dict[str, str], obj: dict[str, Any] | str, **headers: str
) -> dict[str, Any]:
    """Release an object (by body or key) and return the response body, asserting 200."""
    object_key = obj if isinstance(obj, str) else key(obj)
    response = client.patch(f"/v1/api/release/{object_key}", headers={**auth, **headers})
    assert response.status_code == 200, response.text
    return response.json()


def delete(client: httpx.Client, auth: dict[str, str], obj: dict[str, Any] | str) -> None:
    """Delete an object (by body or key), asserting 204."""
    object_key = obj if isinstance(obj, str) else key(obj)
    response = client.delete(f"/v1/api/delete/{object_key}", headers=auth)
    assert response.status_code == 204, response.text


def _component(by_uri: dict[str, dict[str, Any]], start: set[str]) -> set[str]:
    """Every ``@id`` connected to ``start`` through history links (next, previous, prime, both ways)."""
    linked: dict[str, set[str]] = {uri: set() for uri in by_uri}
    for uri, doc in by_uri.items():
        history = doc.get("__rerum", {}).get("history", {})
        for other in [*history.get("next", []), history.get("previous", ""), history.get("prime", "")]:
            if other in linked:
                linked[uri].add(other)
                linked[other].add(uri)
    seen, todo = set(), [uri for uri in start if uri in linked]
    while todo:
        uri = todo.pop()
        if uri not in seen:
            seen.add(uri)
            todo.extend(linked[uri] - seen)
    return seen


def assert_consistent_trees(server: RunningServer, uris: list[str]) -> None:
    """Check the version-tree invariants for every live document connected to ``uris``.

    Every ``history.next`` entry names an existing, non-deleted document whose ``previous`` points
    back; every RERUM ``previous`` names a live parent that lists the document in ``next``; every
    non-root ``prime`` names a live root reachable by following ``previous``.
    """
    prefix = id_prefix(server)
    by_uri = {doc["@id"]: doc for doc in all_stored(server)}
    for uri in _component(by_uri, set(uris)):
        doc = by_uri[uri]
        if "__deleted" in doc:
            continue
        history = doc["__rerum"]["history"]
        for child_uri in history["next"]:
            child = by_uri.get(child_uri)
            assert child is not None and "__deleted" not in child, (
                f"{uri} lists a missing/deleted {child_uri}"
            )
            assert child["__rerum"]["history"]["previous"] == uri, f"{child_uri} does not point back to {uri}"
        assert len(history["next"]) == len(set(history["next"])), f"{uri} lists a version twice"
        previous = history["previous"]
        if previous.startswith(prefix):
            parent = by_uri.get(previous)
            assert parent is not None and "__deleted" not in parent, (
                f"{uri} derives from a missing/deleted parent"
            )
            assert uri in parent["__rerum"]["history"]["next"], f"{previous} does not list {uri}"
        if history["prime"] == "root":
            assert not previous.startswith(prefix), f"root {uri} has a RERUM previous"
            continue
        root = by_uri.get(history["prime"])
        assert root is not None and "__deleted" not in root, f"{uri} has a missing/deleted prime"
        assert root["__rerum"]["history"]["prime"] == "root", f"{uri}'s prime is not a root"
        ancestor, steps = doc, 0
        while ancestor["__rerum"]["history"]["prime"] != "root" and steps < len(by_uri):
            ancestor, steps = by_uri[ancestor["__rerum"]["history"]["previous"]], steps + 1
        assert ancestor["@id"] == history["prime"], f"following previous from {uri} does not reach its prime"

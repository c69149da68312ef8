"""Wire rules that hold for every endpoint: CORS, routing, 405/404, HEAD, conditional GET, maintenance modes."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from tests.conftest import OWNER
from tests.support import database
from tests.support.api import create, key, uri
from tests.support.server import RunningServer
from tests.support.wire import (
    DOWN_BODY,
    JSON_UTF8,
    PREFLIGHT,
    READ_ONLY_BODY,
    TAIL_404,
    AnsweringServer,
    descends_from,
)

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
# Differ between two requests (worker; MISS then HIT; the request id).
VOLATILE = {"date", "x-rerum-worker", "x-cache", "x-request-id"}


def rfc1123_utc(stamp: str) -> str:
    """RERUM's zone-less UTC timestamp (``2025-06-24T10:00:00.123``) as an HTTP date."""
    moment = datetime.strptime(stamp.split(".")[0], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return format_datetime(moment, usegmt=True)


@pytest.fixture(scope="module")
def stored(server: RunningServer, owner: dict[str, str]) -> dict[str, Any]:
    """One object of the owner's, created once for the read-only checks of this module."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        return create(http, owner, {"type": "Annotation", "body": {"value": "wire"}})


# --- CORS ------------------------------------------------------------------------------------------------

NON_PREFLIGHT_REQUESTS = [
    ("GET", "/v1/api", {}, None),
    ("GET", "/nowhere", {}, None),
    ("GET", "/v1/id/000000000000000000000000", {}, None),
    ("HEAD", "/v1/id/000000000000000000000000", {}, None),
    ("PUT", "/v1/id/abc", {}, None),
    ("POST", "/v1/api/create", {"Content-Type": "application/json"}, b'{"a": 1}'),
    ("POST", "/v1/api/create", {"Content-Type": "application/json"}, b"{not json"),
    ("GET", "/v1", {}, None),
]


@pytest.mark.parametrize(("method", "path", "headers", "content"), NON_PREFLIGHT_REQUESTS)
def test_every_non_preflight_response_allows_any_origin_and_exposes_all_headers(
    client: httpx.Client, method: str, path: str, headers: dict[str, str], content: bytes | None
) -> None:
    response = client.request(method, path, headers=headers, content=content)
    assert response.headers.get_list("access-control-allow-origin") == ["*"]
    assert response.headers.get_list("access-control-expose-headers") == ["*"]
    assert "access-control-allow-methods" not in response.headers
    assert "vary" not in response.headers


@pytest.mark.parametrize("path", ["/nowhere/at/all", "/v1/api/create", "/v1/id/abc", "/", "/V1/API/DELETE"])
def test_options_on_any_path_answers_204_with_the_preflight_headers(client: httpx.Client, path: str) -> None:
    response = client.options(
        path, headers={"Origin": "https://example.org", "Access-Control-Request-Method": "PUT"}
    )
    assert response.status_code == 204
    assert response.content == b""
    for name, value in PREFLIGHT.items():
        assert response.headers.get_list(name) == [value], name
    assert "content-type" not in response.headers


def test_options_is_answered_before_body_parsing_and_auth(client: httpx.Client) -> None:
    headers = {"Authorization": "Basic x", "Content-Type": "application/json"}
    response = client.request("OPTIONS", "/v1/api/create", headers=headers, content=b"{oops")
    assert response.status_code == 204
    assert response.headers["access-control-allow-headers"] == PREFLIGHT["access-control-allow-headers"]


# --- X-Rerum-Worker --------------------------------------------------------------------------------------


def test_worker_header_names_the_host_and_a_worker_process_of_the_server(server: RunningServer) -> None:
    pids = set()
    for _ in range(4):  # a new connection each time, so more than one worker may answer
        response = httpx.get(server.url + "/v1/api", timeout=30)
        match = re.fullmatch(re.escape(socket.gethostname()) + r"/(\d+)", response.headers["x-rerum-worker"])
        assert match is not None, response.headers["x-rerum-worker"]
        pids.add(int(match.group(1)))
    for pid in pids:
        assert pid != server.process.pid
        assert descends_from(pid, server.process.pid)


@pytest.fixture(scope="module")
def quiet_server(server: RunningServer, test_database: database.DatabaseServer) -> Iterator[RunningServer]:
    running = RunningServer(workers=1, data_dir=server.data_dir.parent / "quiet",
                            database_url=test_database.new_database(), env={"RERUM_WORKER_HEADER": "false"})  # fmt: skip
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/api"), ("GET", "/nowhere"), ("OPTIONS", "/v1/api")]
)
def test_worker_header_is_absent_when_switched_off(
    quiet_server: RunningServer, method: str, path: str
) -> None:
    response = httpx.request(method, quiet_server.url + path, timeout=30)
    assert response.status_code in (200, 204, 404)
    assert "x-rerum-worker" not in response.headers


# --- pages and unknown paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/nowhere", "/v1/api/nothing", "/v1/id/", "/v1/api/search/fuzzy", "/v1/api/delete", "/v1/api/delete/",
     "/v1/api/release", "/v1/id/%2F", "/v1/id/a/b", "/v1/id/%00"],
)  # fmt: skip
def test_unknown_path_answers_404_this_page_does_not_exist_as_html(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.content == b"This page does not exist"
    assert response.headers["content-type"] == HTML


def test_delete_without_an_id_is_404_this_page_does_not_exist(
    client: httpx.Client, owner: dict[str, str], unchanged_database: None
) -> None:
    response = client.delete("/v1/api/delete", headers=owner)
    assert response.status_code == 404
    assert response.content == b"This page does not exist"


def test_v1_without_slash_redirects_301_to_v1_slash(client: httpx.Client) -> None:
    response = client.get("/v1")
    assert response.status_code == 301
    assert response.headers["location"] == "/v1/"
    assert response.content == b""


@pytest.mark.parametrize("path", ["/", "/v1/", "/V1/"])
def test_index_page_is_html_linking_the_api_map(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == HTML
    assert 'href="/v1/api"' in response.text
    assert response.text.startswith("<!doctype html>")


@pytest.mark.parametrize("path", ["/v1/context.json", "/context.json"])
def test_context_json_defines_the_rerum_metadata_terms(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_UTF8
    context = response.json()["@context"]
    assert context["__rerum"]["@id"] == "rerum:metadata"
    for term in ("generatedBy", "createdAt", "isOverwritten", "isReleased", "history", "releases", "prime",
                 "previous", "next", "slug", "__deleted"):  # fmt: skip
        assert term in context, term


# --- routing ---------------------------------------------------------------------------------------------


def test_paths_are_case_insensitive_and_take_a_trailing_slash(
    client: httpx.Client, stored: dict[str, Any]
) -> None:
    plain = client.get(f"/v1/id/{key(stored)}")
    shouted = client.get(f"/V1/ID/{key(stored)}/")
    assert shouted.status_code == 200
    assert shouted.content == plain.content


def test_slugs_keep_their_case_in_lookups(client: httpx.Client, owner: dict[str, str]) -> None:
    slug = f"Wire-Case-{uuid.uuid4().hex}"
    created = create(client, owner, {"kind": "cased"}, Slug=slug)
    assert client.get(f"/v1/id/{slug}").json()["@id"] == uri(created)
    lowered = client.get(f"/v1/id/{slug.lower()}")
    assert lowered.status_code == 404
    assert lowered.text == f"No RERUM object with id '{slug.lower()}'" + TAIL_404


@pytest.mark.parametrize("path", ["/v1/api/create.action", "/V1/API/Create.Action/"])
def test_legacy_create_action_path_creates(client: httpx.Client, owner: dict[str, str], path: str) -> None:
    response = client.post(path, json={"legacy": path}, headers=owner)
    assert response.status_code == 201
    assert client.get(f"/v1/id/{key(response.json())}").json()["legacy"] == path


def test_legacy_batch_create_path_is_bulk_create(client: httpx.Client, owner: dict[str, str]) -> None:
    response = client.post("/v1/api/batch_create", json=[{"n": 1}, {"n": 2}], headers=owner)
    assert response.status_code == 201
    assert [item["n"] for item in response.json()] == [1, 2]
    assert [link for link in response.headers.get_list("link")] == [item["@id"] for item in response.json()]


def test_legacy_update_action_path_makes_a_new_version(client: httpx.Client, owner: dict[str, str]) -> None:
    original = create(client, owner, {"v": 1})
    response = client.put("/v1/api/update.action", json={"@id": uri(original), "v": 2}, headers=owner)
    assert response.status_code == 200
    assert response.json()["v"] == 2
    assert response.json()["__rerum"]["history"]["previous"] == uri(original)


# --- 405 -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/id/x", "GET, HEAD"),
        ("DELETE", "/v1/id/x", "GET, HEAD"),
        ("POST", "/v1/since/x", "GET, HEAD"),
        ("PATCH", "/v1/history/x", "GET, HEAD"),
        ("GET", "/v1/api/create", "POST"),
        ("HEAD", "/v1/api/create", "POST"),
        ("PUT", "/v1/api/bulkCreate", "POST"),
        ("GET", "/v1/api/update", "PUT"),
        ("POST", "/v1/api/bulkUpdate", "PUT"),
        ("PUT", "/v1/api/patch", "PATCH, POST"),
        ("GET", "/v1/api/set", "PATCH, POST"),
        ("DELETE", "/v1/api/unset", "PATCH, POST"),
        ("POST", "/v1/api/overwrite", "PUT"),
        ("GET", "/v1/api/delete/x", "DELETE"),
        ("HEAD", "/v1/api/delete/x", "DELETE"),
        ("PUT", "/v1/api/release/x", "PATCH"),
    ],
)
def test_wrong_method_answers_405_with_allow_and_empty_body(
    client: httpx.Client, method: str, path: str, allow: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.content == b""
    assert response.headers["content-length"] == "0"
    assert "content-type" not in response.headers
    assert "etag" not in response.headers


def test_405_comes_before_authentication(client: httpx.Client, unchanged_database: None) -> None:
    response = client.get("/v1/api/create", headers={"Authorization": "Basic x"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


# --- GET and HEAD of /v1/id ------------------------------------------------------------------------------


def test_head_of_an_object_has_the_get_headers_and_no_body(
    client: httpx.Client, stored: dict[str, Any]
) -> None:
    got = client.get(f"/v1/id/{key(stored)}")
    head = client.head(f"/v1/id/{key(stored)}")
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(got.content))
    assert {k: v for k, v in head.headers.items() if k not in VOLATILE} == {
        k: v for k, v in got.headers.items() if k not in VOLATILE
    }


def test_head_of_a_missing_object_is_404_without_body(client: httpx.Client) -> None:
    got = client.get("/v1/id/000000000000000000000001")
    head = client.head("/v1/id/000000000000000000000001")
    assert head.status_code == got.status_code == 404
    assert head.content == b""
    assert head.headers["content-length"] == str(len(got.content))


def test_missing_object_answers_404_with_its_id_and_the_not_found_tail(client: httpx.Client) -> None:
    response = client.get("/v1/id/abc123")
    assert response.status_code == 404
    assert response.headers["content-type"] == TEXT
    assert response.text == "No RERUM object with id 'abc123'" + TAIL_404


def test_object_read_is_no_cache_with_a_strong_etag(client: httpx.Client, stored: dict[str, Any]) -> None:
    response = client.get(f"/v1/id/{key(stored)}")
    assert response.headers["cache-control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]+-[A-Za-z0-9+/]{27}"', response.headers["etag"])
    assert response.headers["allow"] == "GET,OPTIONS,HEAD,PUT,PATCH,DELETE,POST"
    assert response.headers["link"] == '<http://www.w3.org/ns/ldp#Resource>; rel="type"'
    assert response.headers["location"] == uri(stored)


def test_object_read_has_empty_current_overwritten_version_when_never_overwritten(
    client: httpx.Client, stored: dict[str, Any]
) -> None:
    response = client.get(f"/v1/id/{key(stored)}")
    assert response.headers.get_list("current-overwritten-version") == [""]


def test_object_read_has_last_modified_of_created_at_in_utc(
    client: httpx.Client, stored: dict[str, Any]
) -> None:
    response = client.get(f"/v1/id/{key(stored)}")
    assert response.headers["last-modified"] == rfc1123_utc(stored["__rerum"]["createdAt"])


def test_overwritten_object_reports_its_overwrite_time(client: httpx.Client, owner: dict[str, str]) -> None:
    created = create(client, owner, {"state": 1})
    overwritten = client.put(
        "/v1/api/overwrite", json={"@id": uri(created), "state": 2}, headers=owner
    ).json()
    stamp = overwritten["__rerum"]["isOverwritten"]
    response = client.get(f"/v1/id/{key(created)}")
    assert stamp != ""
    assert response.headers["current-overwritten-version"] == stamp
    assert response.headers["last-modified"] == rfc1123_utc(stamp)


def test_object_is_found_by_its_slug(client: httpx.Client, owner: dict[str, str]) -> None:
    slug = f"wire-slug-{uuid.uuid4().hex}"
    created = create(client, owner, {"named": True}, Slug=slug)
    by_slug = client.get(f"/v1/id/{slug}")
    assert by_slug.status_code == 200
    assert by_slug.json() == client.get(f"/v1/id/{key(created)}").json()
    assert by_slug.json()["__rerum"]["slug"] == slug
    assert by_slug.headers["location"] == uri(created)


RESOURCE_LINK = '<http://www.w3.org/ns/ldp#Resource>; rel="type"'
CONTAINER_LINK = 'application/ld+json;charset=utf-8;profile="http://www.w3.org/ns/anno.jsonld"'


@pytest.mark.parametrize(
    ("body", "link"),
    [
        ({"type": 5}, RESOURCE_LINK),
        ({"type": {"not": "a string"}}, RESOURCE_LINK),
        ({"type": "Annotation"}, RESOURCE_LINK),
        ({"type": "AnnotationPage"}, CONTAINER_LINK),
        ({"type": "Settings"}, CONTAINER_LINK),
        ({"@type": "sc:Canvas", "type": "Annotation"}, CONTAINER_LINK),
        ({"type": ["Canvas", "Thing"]}, CONTAINER_LINK),
        ({"type": ["oa:AnnotationList"]}, RESOURCE_LINK),
    ],
)
def test_link_header_follows_the_type_and_never_fails(
    client: httpx.Client, owner: dict[str, str], body: dict[str, Any], link: str
) -> None:
    created = client.post("/v1/api/create", json=body, headers=owner)
    assert created.status_code == 201
    assert created.headers["link"] == link
    read = client.get(f"/v1/id/{key(created.json())}")
    assert read.status_code == 200
    assert read.headers["link"] == link


def test_object_with_a_context_is_served_as_json_ld(client: httpx.Client, owner: dict[str, str]) -> None:
    created = create(client, owner, {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation"})
    response = client.get(f"/v1/id/{key(created)}")
    assert response.headers["content-type"] == (
        'application/ld+json; charset=utf-8; profile="http://www.w3.org/ns/anno.jsonld"'
    )
    assert response.headers["location"] == response.json()["id"] == created["id"]
    assert "@id" not in response.json()


# --- conditional GET -------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["exact", "weak", "star", "in a list"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_if_none_match_answers_304_without_body(
    client: httpx.Client, stored: dict[str, Any], form: str, method: str
) -> None:
    etag = client.get(f"/v1/id/{key(stored)}").headers["etag"]
    sent = {"exact": etag, "weak": "W/" + etag, "star": "*", "in a list": f'"nope", {etag}'}[form]
    response = client.request(method, f"/v1/id/{key(stored)}", headers={"If-None-Match": sent})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert "content-type" not in response.headers
    assert response.headers["current-overwritten-version"] == ""


def test_if_none_match_of_another_etag_answers_200(client: httpx.Client, stored: dict[str, Any]) -> None:
    response = client.get(
        f"/v1/id/{key(stored)}", headers={"If-None-Match": '"0-AAAAAAAAAAAAAAAAAAAAAAAAAAA"'}
    )
    assert response.status_code == 200
    assert response.json()["@id"] == uri(stored)


def test_request_with_cache_control_no_cache_never_gets_304(
    client: httpx.Client, stored: dict[str, Any]
) -> None:
    etag = client.get(f"/v1/id/{key(stored)}").headers["etag"]
    response = client.get(
        f"/v1/id/{key(stored)}", headers={"If-None-Match": etag, "Cache-Control": "no-cache"}
    )
    assert response.status_code == 200
    assert response.json()["@id"] == uri(stored)


def test_if_modified_since_not_before_last_modified_answers_304(
    client: httpx.Client, stored: dict[str, Any]
) -> None:
    last_modified = client.get(f"/v1/id/{key(stored)}").headers["last-modified"]
    assert (
        client.get(f"/v1/id/{key(stored)}", headers={"If-Modified-Since": last_modified}).status_code == 304
    )
    earlier = {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
    assert client.get(f"/v1/id/{key(stored)}", headers=earlier).status_code == 200


def test_if_none_match_star_on_a_missing_object_is_still_404(client: httpx.Client) -> None:
    response = client.get("/v1/id/000000000000000000000002", headers={"If-None-Match": "*"})
    assert response.status_code == 404
    assert response.text == "No RERUM object with id '000000000000000000000002'" + TAIL_404


# --- DOWN ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def down_server(server: RunningServer, test_database: database.DatabaseServer) -> Iterator[RunningServer]:
    running = AnsweringServer(workers=1, data_dir=server.data_dir.parent / "down",
                              database_url=test_database.new_database(), env={"DOWN": "true"})  # fmt: skip
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("GET", "/v1/api", None),
        ("GET", "/v1/id/000000000000000000000000", None),
        ("HEAD", "/v1/since/000000000000000000000000", None),
        ("POST", "/v1/api/create", b'{"a": 1}'),
        ("DELETE", "/v1/api/delete/abc", None),
        ("GET", "/v1/", None),
        ("GET", "/v1/context.json", None),
        ("GET", "/nowhere", None),
    ],
)
def test_down_server_answers_503_with_the_maintenance_json(
    down_server: RunningServer, method: str, path: str, content: bytes | None
) -> None:
    response = httpx.request(method, down_server.url + path, content=content,
                             headers={"Content-Type": "application/json"}, timeout=30)  # fmt: skip
    assert response.status_code == 503
    assert response.headers["content-type"] == JSON_UTF8
    assert response.headers["access-control-allow-origin"] == "*"
    if method != "HEAD":
        assert response.json() == DOWN_BODY


def test_down_server_still_answers_preflight(down_server: RunningServer) -> None:
    response = httpx.options(down_server.url + "/v1/api/create", timeout=30)
    assert response.status_code == 204
    assert response.headers["access-control-allow-methods"] == PREFLIGHT["access-control-allow-methods"]


@pytest.mark.parametrize(("path", "content_type"), [("/", HTML), ("/context.json", JSON_UTF8)])
def test_down_server_still_serves_root_level_static_pages(
    down_server: RunningServer, path: str, content_type: str
) -> None:
    response = httpx.get(down_server.url + path, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type


# --- READONLY --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def read_only_server(server: RunningServer) -> Iterator[RunningServer]:
    """A READONLY server over the main server's database, so it has objects to read."""
    running = RunningServer(workers=1, data_dir=server.data_dir.parent / "read-only",
                            database_url=server.env["DATABASE_URL"], env={"READONLY": "true"})  # fmt: skip
    yield running
    running.stop()


WRITES = [
    ("POST", "/v1/api/create", {"a": 1}),
    ("POST", "/v1/api/bulkCreate", [{"a": 1}]),
    ("PUT", "/v1/api/update", {"@id": "http://example.org/x", "a": 1}),
    ("PUT", "/v1/api/bulkUpdate", [{"@id": "http://example.org/x"}]),
    ("PATCH", "/v1/api/patch", {"@id": "http://example.org/x", "a": 2}),
    ("PATCH", "/v1/api/set", {"@id": "http://example.org/x", "b": 2}),
    ("PATCH", "/v1/api/unset", {"@id": "http://example.org/x", "a": None}),
    ("PUT", "/v1/api/overwrite", {"@id": "http://example.org/x", "a": 3}),
    ("DELETE", "/v1/api/delete/abc", None),
    ("PATCH", "/v1/api/release/abc", None),
]


@pytest.mark.parametrize("authorized", [True, False], ids=["with token", "without token"])
@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_read_only_server_refuses_every_write_with_503_json(
    read_only_server: RunningServer, owner: dict[str, str], unchanged_database: None,
    method: str, path: str, body: Any, authorized: bool,
) -> None:  # fmt: skip
    response = httpx.request(method, read_only_server.url + path, json=body,
                             headers=owner if authorized else {}, timeout=30)  # fmt: skip
    assert response.status_code == 503
    assert response.headers["content-type"] == JSON_UTF8
    assert response.json() == READ_ONLY_BODY


def test_read_only_server_serves_reads(
    read_only_server: RunningServer, client: httpx.Client, stored: dict[str, Any]
) -> None:
    with httpx.Client(base_url=read_only_server.url, timeout=30) as read_only:
        response = read_only.get(f"/v1/id/{key(stored)}")
        assert response.status_code == 200
        assert response.json() == client.get(f"/v1/id/{key(stored)}").json()
        assert response.json()["__rerum"]["generatedBy"] == OWNER
        assert read_only.get("/v1/api").status_code == 200
        assert read_only.get(f"/v1/history/{key(stored)}").json() == []

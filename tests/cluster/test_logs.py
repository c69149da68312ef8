"""What `rerum serve` tells its operator on stderr: one access line per request (text or JSON, the request
id echoed, never a token), the PostgreSQL and the Redis it uses, and a young cache namespace (also in
health, with the time left)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from rerum_server.auth.local_key import mint_token
from rerum_server.embedded.redis import EmbeddedRedis, free_port
from tests.conftest import AGENT_CLAIM, OWNER
from tests.support.database import DatabaseServer
from tests.support.processes import poll
from tests.support.race import Api
from tests.support.server import RunningServer, scratch

pytestmark = pytest.mark.cluster

ACCESS_KEYS = {"time", "level", "logger", "message", "requestId", "method", "route", "path", "status", "ms",
               "worker", "cache", "agent"}  # fmt: skip
TEXT_ACCESS = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) INFO rerum_server\.access (?P<method>\S+) "
    r"(?P<route>\S+) (?P<status>\d{3}) (?P<ms>\d+\.\d{3})ms cache=(?P<cache>\S+) id=(?P<requestId>\S+) "
    r"worker=(?P<worker>\S+) agent=(?P<agent>\S+) path=(?P<path>\S+)$"
)
SAFE_ID = re.compile(r"^[A-Za-z0-9._:/+=@~-]{1,128}$")


def _server(test_database: DatabaseServer, name: str, log_format: str) -> RunningServer:
    return RunningServer(
        workers=2,
        data_dir=scratch(name),
        database_url=test_database.new_database(),
        env={"LOG_FORMAT": log_format},
    )


@pytest.fixture(scope="module")
def json_server(test_database: DatabaseServer) -> Iterator[RunningServer]:
    running = _server(test_database, "logs-json", "json")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def text_server(test_database: DatabaseServer) -> Iterator[RunningServer]:
    running = _server(test_database, "logs-text", "text")
    yield running
    running.stop()


def _token(server: RunningServer) -> str:
    return mint_token(Path(server.data_dir).resolve(), OWNER, agent_claim=AGENT_CLAIM)


def json_access(server: RunningServer) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "rerum_server.access"]


def text_access(server: RunningServer) -> list[dict[str, str]]:
    return [match.groupdict() for line in server.log().splitlines() if (match := TEXT_ACCESS.match(line))]


def _traffic(server: RunningServer, tag: str) -> tuple[str, dict[str, dict[str, str]]]:
    """A write with a token and a request id, then a read of it; returns the token and the replies'
    headers by request id."""
    token = _token(server)
    api = Api(server.url, token)
    created = api.write("POST", "/v1/api/create", {"logs": tag}, **{"X-Request-Id": f"{tag}-write"})
    key = created.body["@id"].rsplit("/", 1)[1]
    read = api.call("GET", "/v1/id/" + key, headers={"X-Request-Id": f"{tag}-read"})
    generated = api.call("GET", "/v1/api")
    assert created.headers["x-request-id"] == f"{tag}-write" and read.headers["x-request-id"] == f"{tag}-read"
    assert SAFE_ID.match(generated.headers["x-request-id"])
    return token, {f"{tag}-write": created.headers, f"{tag}-read": read.headers,
                   generated.headers["x-request-id"]: generated.headers}  # fmt: skip


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_one_access_line_per_request_with_its_id_and_never_the_token(
    request: pytest.FixtureRequest, log_format: str
) -> None:
    server: RunningServer = request.getfixturevalue(f"{log_format}_server")
    parse = json_access if log_format == "json" else text_access
    token, replies = _traffic(server, f"t-{log_format}")

    def logged() -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for line in parse(server):
            found.setdefault(str(line["requestId"]), []).append(line)
        return found

    poll(lambda: set(replies) <= set(logged()), deadline_s=30)  # written by each worker's log thread
    lines = logged()
    assert all(len(lines[rid]) == 1 for rid in replies), lines
    write, read = lines[f"t-{log_format}-write"][0], lines[f"t-{log_format}-read"][0]
    assert (write["method"], write["route"], str(write["status"])) == ("POST", "/v1/api/create", "201")
    assert write["agent"] == OWNER
    assert (read["method"], read["route"], str(read["status"])) == ("GET", "/v1/id/{id}", "200")
    assert read["cache"] == replies[f"t-{log_format}-read"]["x-cache"]
    assert read["path"].startswith("/v1/id/") and read["agent"] in (None, "-")
    for rid, headers in replies.items():
        assert lines[rid][0]["worker"] == headers["x-rerum-worker"]
        assert float(lines[rid][0]["ms"]) >= 0
    if log_format == "json":
        assert all(set(line) == ACCESS_KEYS for line in json_access(server))
        # Every line the server wrote is JSON: granian's own and Python's warnings included.
        assert all(line.startswith("{") for line in server.log().splitlines() if line), server.log()[:3000]
    assert token not in server.log() and token.split(".")[2] not in server.log()


def _raw_request(server: RunningServer, header_line: bytes) -> bytes:
    """A GET with one raw header line (bytes a client library would refuse to send); the whole answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"GET /v1/api HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header_line + b"\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _headers(answer: bytes) -> dict[str, str]:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in head)}


def test_a_hostile_request_id_is_cut_and_cleaned_before_it_is_echoed_or_logged(
    json_server: RunningServer,
) -> None:
    long = httpx.get(json_server.url + "/v1/api", headers={"X-Request-Id": "a" * 10_000}, timeout=30)
    assert long.status_code == 200 and long.headers["x-request-id"] == "a" * 128

    injected = _raw_request(json_server, b"X-Request-Id: evil\rSet-Cookie: injected=1")
    # The server's HTTP layer refuses a bare CR outright, or the id arrives without it: never a header.
    assert b"injected" not in injected.split(b"\r\n\r\n", 1)[0]
    assert "set-cookie" not in _headers(injected)

    odd = _raw_request(json_server, b'X-Request-Id: odd\t id "quoted" \\back\xff\xfe\x80end')
    echoed = _headers(odd)["x-request-id"]
    assert echoed == "oddidquotedbackend"
    poll(lambda: any(line["requestId"] == echoed for line in json_access(json_server)), deadline_s=30)
    assert all(SAFE_ID.match(line["requestId"]) for line in json_access(json_server))
    assert "evil\r" not in json_server.log() and "injected=1" not in json_server.log()


def test_start_up_lines_name_the_postgresql_and_the_redis(text_server: RunningServer) -> None:
    log = text_server.log()
    database = next(line for line in log.splitlines() if " database: " in line)
    dsn = urlsplit(text_server.env["DATABASE_URL"])
    host = dsn.hostname or parse_qs(dsn.query)["host"][0]
    assert "external PostgreSQL 1" in database and host in database and dsn.path[1:] in database, database
    assert "password" not in database.lower()
    cache = next(line for line in log.splitlines() if " cache: " in line)
    assert "embedded Valkey" in cache and "127.0.0.1:" in cache and "the cache is ready" in cache, cache


@pytest.fixture
def fresh_valkey(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Valkey just started and not marked new: to the server, an external Redis after a restart."""
    server = EmbeddedRedis(tmp_path, port=free_port())
    server.mark_new = False
    server.start()
    yield server
    server.stop()


def test_a_young_namespace_is_reported_with_the_time_left_until_reads_can_hit(
    fresh_valkey: EmbeddedRedis, test_database: DatabaseServer
) -> None:
    fence_ms = 3000
    server = RunningServer(
        workers=1,
        data_dir=scratch("logs-young"),
        database_url=test_database.new_database(),
        env={
            "REDIS_URL": f"redis://127.0.0.1:{fresh_valkey.port}/0",
            "CACHE_NAMESPACE": "young",
            "CACHE_FENCE_MS": str(fence_ms),
        },
    )
    try:
        cache = next(line for line in server.log().splitlines() if " cache: " in line)
        assert "external Valkey 9" in cache and f"127.0.0.1:{fresh_valkey.port}" in cache, cache
        assert "the cache is young: fills are refused for 3.0 s more" in cache, cache

        api = Api(server.url, _token(server))
        assert api.get("0" * 24).headers["x-cache"] == "MISS"  # the first read starts the namespace's clock
        health = httpx.get(server.url + "/v1/api/cache/health", timeout=30).json()
        assert health["healthy"] and health["young"] is True, health
        assert 0 < health["youngForMs"] <= fence_ms and "CACHE_FENCE_MS" in health["note"], health

        def grown_up() -> bool:
            return httpx.get(server.url + "/v1/api/cache/health", timeout=30).json()["young"] is False

        poll(grown_up, deadline_s=30)
        assert api.get("0" * 24).headers["x-cache"] == "MISS"  # now it fills
        assert api.get("0" * 24).headers["x-cache"] == "HIT"
    finally:
        server.stop()

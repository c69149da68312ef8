"""An external cache Redis that refuses our credentials stops `rerum serve` at start-up in one line, one
that cannot be reached only warns, and the health endpoint tells the two apart while serving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from rerum_server.embedded.redis import EmbeddedRedis, free_port
from tests.support.database import DatabaseServer
from tests.support.processes import one_line, poll, serve_until_exit
from tests.support.server import RunningServer, scratch

pytestmark = pytest.mark.cluster

PASSWORD = "the-right-password-71c"
WRONG = "not-the-password-9f3"


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A real Valkey that requires ``PASSWORD`` (and knows an ACL user allowed nothing but PING)."""
    server = EmbeddedRedis(tmp_path, port=free_port())
    server.start()
    admin = redis.Redis(port=server.port)
    admin.execute_command("ACL", "SETUSER", "pinger", "on", ">pinger-password", "+ping")
    admin.config_set("requirepass", PASSWORD)
    admin.close()
    yield server
    server.stop()


def _redis_env(port: int, **credentials: str) -> dict[str, str]:
    # REDIS_URL empty: an inherited one (RERUM_TEST_REDIS_URL runs) would win over REDIS_HOST.
    return {"REDIS_URL": "", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port), "REDIS_USERNAME": "",
            "REDIS_PASSWORD": "", **credentials}  # fmt: skip


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({"REDIS_PASSWORD": WRONG}, id="wrong-password"),
        pytest.param({}, id="no-password"),
        pytest.param(
            {"REDIS_USERNAME": "pinger", "REDIS_PASSWORD": "pinger-password"}, id="acl-user-without-commands"
        ),
    ],
)
def test_refused_credentials_stop_start_up_in_one_line(
    valkey: EmbeddedRedis, test_database: DatabaseServer, tmp_path: Path, credentials: dict[str, str]
) -> None:
    env = {"DATABASE_URL": test_database.new_database(), **_redis_env(valkey.port, **credentials)}
    line = one_line(serve_until_exit(free_port(), tmp_path / "data", env))
    assert "refused our credentials" in line and f"127.0.0.1:{valkey.port}" in line, line
    assert WRONG not in line and "pinger-password" not in line, "a password was printed"


def test_an_unreachable_redis_warns_and_health_says_unreachable(test_database: DatabaseServer) -> None:
    nothing_there = free_port()
    server = RunningServer(
        workers=1,
        data_dir=scratch("unreachable-redis"),
        database_url=test_database.new_database(),
        env=_redis_env(nothing_there, REDIS_PASSWORD=PASSWORD),
    )
    try:
        health = httpx.get(server.url + "/v1/api/cache/health", timeout=30)
        assert health.status_code == 503
        assert health.json()["status"] == "unreachable" and health.json()["reachable"] is False
        warnings = [
            line for line in server.log().splitlines() if "WARNING" in line and "cannot reach" in line
        ]
        assert len(warnings) == 1 and f"127.0.0.1:{nothing_there}" in warnings[0], server.log()
        assert PASSWORD not in server.log()
    finally:
        server.stop()


def test_health_tells_refused_credentials_from_unreachable(
    valkey: EmbeddedRedis, test_database: DatabaseServer
) -> None:
    server = RunningServer(
        workers=2,
        data_dir=scratch("credentials"),
        database_url=test_database.new_database(),
        env=_redis_env(valkey.port, REDIS_PASSWORD=PASSWORD),
    )
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/v1/api/cache/health").json()["status"] == "ok"

            # The password is rotated on the server and the workers' connections dropped: every new
            # connection of theirs now authenticates with a password the server refuses.
            admin = redis.Redis(port=valkey.port, password=PASSWORD)
            admin.config_set("requirepass", "rotated-password")
            admin.client_kill_filter(_type="normal", skipme=True)
            admin.close()
            poll(lambda: client.get("/v1/api/cache/health").json()["status"] == "credentials-refused")
            refused = client.get("/v1/api/cache/health")
            assert refused.status_code == 503
            assert refused.json()["healthy"] is False and refused.json()["reachable"] is True

            valkey.stop()
            poll(lambda: client.get("/v1/api/cache/health").json()["status"] == "unreachable")
            assert client.get("/v1/api/cache/health").status_code == 503
    finally:
        server.stop()

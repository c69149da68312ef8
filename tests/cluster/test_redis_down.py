"""Redis stopped under a running cluster: reads bypass to the database, writes fail closed (503)
with nothing written, and caching resumes on its own once Redis is back (no API restart)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rerum_server.auth.local_key import mint_token
from rerum_server.embedded.redis import EmbeddedRedis
from tests.conftest import AGENT_CLAIM, OWNER
from tests.support.database import DatabaseServer, fingerprint
from tests.support.server import RunningServer, free_port, scratch

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def redis_and_cluster(test_database: DatabaseServer) -> Iterator[tuple[EmbeddedRedis, RunningServer]]:
    base = scratch("redis-down")
    redis_server = EmbeddedRedis(base, port=free_port())
    url = redis_server.start()
    server = RunningServer(
        workers=2,
        data_dir=base / "server",
        database_url=test_database.new_database(),
        env={"REDIS_URL": url, "CACHE_FENCE_MS": "2000", "REDIS_TIMEOUT_MS": "200"},
    )
    yield redis_server, server
    server.stop()
    redis_server.stop()


def _poll(check: object, deadline_s: float = 60.0) -> None:
    """Repeat ``check`` until it returns True, failing after the deadline (a bounded wait, not a sleep)."""
    end = time.monotonic() + deadline_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < end, "the condition did not hold before the deadline"
        time.sleep(0.1)


def test_reads_bypass_writes_fail_closed_and_caching_resumes(
    redis_and_cluster: tuple[EmbeddedRedis, RunningServer],
) -> None:
    redis_server, server = redis_and_cluster
    auth = {
        "Authorization": "Bearer "
        + mint_token(Path(server.data_dir).resolve(), OWNER, agent_claim=AGENT_CLAIM)
    }
    with httpx.Client(base_url=server.url, timeout=30) as client:
        created = client.post("/v1/api/create", json={"n": 1}, headers=auth)
        assert created.status_code == 201
        path = "/v1/id/" + created.json()["@id"].rsplit("/", 1)[1]
        _poll(lambda: client.get(path).headers["x-cache"] == "HIT")

        redis_server.stop()
        for _ in range(6):
            read = client.get(path)
            assert (read.status_code, read.headers["x-cache"], read.json()["n"]) == (200, "BYPASS", 1)
        before = fingerprint(server.env["DATABASE_URL"])
        for body in ({"@id": created.json()["@id"], "n": 2}, {"@id": created.json()["@id"], "n": 3}):
            refused = client.put("/v1/api/overwrite", json=body, headers=auth)
            assert refused.status_code == 503
            assert "nothing was written" in refused.json()["message"]
        assert client.post("/v1/api/create", json={"n": 9}, headers=auth).status_code == 503
        assert fingerprint(server.env["DATABASE_URL"]) == before

        # Same port, a new server (new run_id): the old namespace is unreachable, and the new one takes
        # no fills for one fence lifetime (a write fenced on the old server might still commit).
        redis_server.mark_new = False
        redis_server.start()
        _poll(lambda: client.put("/v1/api/overwrite", json={"@id": created.json()["@id"], "n": 2},
                                 headers=auth).status_code == 200)  # fmt: skip
        assert client.get(path).json()["n"] == 2
        _poll(lambda: client.get(path).headers["x-cache"] == "HIT")
        assert client.get(path).json()["n"] == 2
        stats = client.get("/v1/api/cache/stats").json()
        assert stats["writesRefused"] >= 3 and stats["bypasses"] >= 6

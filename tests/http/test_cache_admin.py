"""Cache management endpoints: stats shape, health, and clear for administrators only."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from rerum_server.auth.local_key import mint_token
from tests.conftest import AGENT_CLAIM, OWNER
from tests.support.api import create, key
from tests.support.database import DatabaseServer
from tests.support.server import RunningServer, scratch

ADMIN = "https://store.rerum.io/v1/id/admin00000000000000000001"


def test_stats_report_every_counter_in_milliseconds(client: httpx.Client) -> None:
    stats = client.get("/v1/api/cache/stats").json()
    for field in ("enabled", "hits", "misses", "bypasses", "hitRate", "fills", "refusedFills", "fences",
                  "releaseFailures", "writesRefused", "entries", "bytes", "ttl", "endpoints"):  # fmt: skip
        assert field in stats, field
    assert stats["enabled"] is True and stats["ttl"] == 300000
    assert set(stats["endpoints"]) >= {"id", "history", "since", "query", "search"}


def test_health_reports_a_usable_redis(client: httpx.Client) -> None:
    response = client.get("/v1/api/cache/health")
    assert response.status_code == 200
    health = response.json()
    assert health["healthy"] is True and health["role"] == "master"
    assert health["evictionPolicy"].startswith("volatile-") and health["persistence"] is False
    assert len(health["runId"]) == 40 and health["latencyMs"] >= 0


def test_clear_is_refused_to_agents_that_are_not_administrators(
    client: httpx.Client, owner: dict[str, str]
) -> None:
    response = client.post("/v1/api/cache/clear", headers=owner)
    assert response.status_code == 403
    assert response.text.startswith("Only an administrator of this server may clear the cache.")
    assert client.post("/v1/api/cache/clear").status_code == 401


@pytest.fixture(scope="module")
def admin_server(test_database: DatabaseServer) -> Iterator[RunningServer]:
    running = RunningServer(
        workers=1,
        data_dir=scratch("admin"),
        database_url=test_database.new_database(),
        env={"RERUM_ADMIN_AGENTS": ADMIN},
    )
    yield running
    running.stop()


def test_clear_by_an_administrator_empties_the_cache_in_one_step(admin_server: RunningServer) -> None:
    token: Callable[[str], str] = lambda agent: mint_token(  # noqa: E731
        admin_server.data_dir.resolve(), agent, agent_claim=AGENT_CLAIM
    )
    with httpx.Client(base_url=admin_server.url, timeout=30) as http:
        doc = create(http, {"Authorization": "Bearer " + token(OWNER)}, {"n": 1})
        path = "/v1/id/" + key(doc)
        http.get(path)
        assert http.get(path).headers["x-cache"] == "HIT"
        cleared = http.post("/v1/api/cache/clear", headers={"Authorization": "Bearer " + token(ADMIN)})
        assert cleared.status_code == 200
        assert cleared.json()["cleared"] >= 1 and cleared.json()["bytes"] > 0
        assert http.get(path).headers["x-cache"] == "MISS"
        assert http.get("/v1/api/cache/stats").json()["entries"] <= 1

"""The checks made on every new connection: no replica, no allkeys eviction, persistence reported."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
import redis

from rerum_server.cache import safety
from rerum_server.cache.client import CacheClient, CacheUnavailable
from rerum_server.embedded.redis import EmbeddedRedis
from tests.support.server import scratch


@pytest.fixture
def spare_redis() -> Iterator[tuple[EmbeddedRedis, redis.Redis]]:
    server = EmbeddedRedis(scratch("spare-redis"))
    client = redis.Redis.from_url(server.start())
    yield server, client
    client.close()
    server.stop()


def _read_through(url: str, *, allow_allkeys: bool = False) -> str:
    """Try one read script through a client with the connection checks; 'ok' or the refusal."""

    async def attempt() -> str:
        cache = CacheClient.from_url(
            url,
            timeout_s=2,
            entry_ttl_ms=10_000,
            fence_ms=10_000,
            redis_connect_func=safety.connect_check(allow_allkeys=allow_allkeys),
        )
        try:
            await cache.read("digest", ["obj:x"], "id", lease_token="t", count=True)
            return "ok"
        except CacheUnavailable as refused:
            return str(refused)
        finally:
            await cache.aclose()

    return asyncio.run(attempt())


def _url(server: EmbeddedRedis) -> str:
    return f"redis://127.0.0.1:{server.port}/0"


def test_a_volatile_policy_primary_is_accepted(spare_redis: tuple[EmbeddedRedis, redis.Redis]) -> None:
    assert _read_through(_url(spare_redis[0])) == "ok"


def test_an_allkeys_eviction_policy_is_refused_unless_allowed(
    spare_redis: tuple[EmbeddedRedis, redis.Redis],
) -> None:
    server, client = spare_redis
    client.config_set("maxmemory-policy", "allkeys-lru")
    refusal = _read_through(_url(server))
    assert "maxmemory-policy is allkeys-lru" in refusal
    assert _read_through(_url(server), allow_allkeys=True) == "ok"


def test_a_replica_is_refused(spare_redis: tuple[EmbeddedRedis, redis.Redis]) -> None:
    server, client = spare_redis
    primary = EmbeddedRedis(scratch("primary-redis"))
    primary.start()
    try:
        client.replicaof("127.0.0.1", primary.port)
        assert "it is a replica" in _read_through(_url(server))
    finally:
        client.replicaof("NO", "ONE")
        primary.stop()


def test_persistence_is_reported(
    spare_redis: tuple[EmbeddedRedis, redis.Redis], caplog: pytest.LogCaptureFixture
) -> None:
    server, client = spare_redis
    client.config_set("appendonly", "yes")
    safety._warned_persistence = False
    with caplog.at_level(logging.WARNING, logger="rerum_server.cache"):
        assert _read_through(_url(server)) == "ok"
    assert "the cache Redis persists data" in caplog.text


def test_problems_names_each_reason() -> None:
    assert safety.problems({"role": "master", "maxmemory_policy": "volatile-lru"}, allow_allkeys=False) == []
    found = safety.problems({"role": "slave", "maxmemory_policy": "allkeys-random"}, allow_allkeys=False)
    assert len(found) == 2

"""The cache client when one worker's connection to Redis fails (through the nemesis's FaultyProxy,
on the event loop the server runs, uvloop): every call either works or raises ``CacheUnavailable``,
which reads answer with a bypass and writes with a 503. Nothing else may escape. And when Redis
answers with an error (OOM): that call fails, the next one is tried (no backoff).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from urllib.parse import urlsplit

import redis.asyncio
import uvloop

from rerum_server.cache.client import CacheClient, CacheUnavailable
from rerum_server.embedded.redis import EmbeddedRedis
from rerum_server.verify.proxy import FaultyProxy
from tests.support.server import scratch

ROUNDS = 10


async def _until_available(client: CacheClient) -> None:
    """Poll (past the client's backoff) until a read works again, with a deadline."""
    deadline = time.monotonic() + 20
    while True:
        try:
            await client.read("d", ["s"], "id", lease_token="t", count=False)
            return
        except CacheUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)  # poll interval of a deadline-bounded wait


async def _resets(proxy: FaultyProxy) -> list[str]:
    client = CacheClient.from_url(
        proxy.url(), timeout_s=1.0, entry_ttl_ms=60_000, fence_ms=10_000, namespace=uuid.uuid4().hex
    )
    outcomes = []
    try:
        for _ in range(ROUNDS):
            await _until_available(client)
            proxy.set_mode("reset")  # returns once the open connection has been aborted
            # Not a synchronisation (any outcome but CacheUnavailable fails): it gives the loop time to
            # take in the RST, so the next command is written to a closed transport, where uvloop
            # raised RuntimeError past the client's error handling.
            await asyncio.sleep(0.05)
            try:
                await client.fence(["s"], uuid.uuid4().hex)
                outcomes.append("fenced")
            except CacheUnavailable:
                outcomes.append("unavailable")
            proxy.set_mode("pass")
    finally:
        await client.aclose()
    return outcomes


def test_a_reset_connection_is_reported_as_cache_unavailable(redis_url: str) -> None:
    upstream = urlsplit(redis_url)
    with (
        FaultyProxy(upstream.hostname or "127.0.0.1", upstream.port or 6379) as proxy,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        outcomes = runner.run(_resets(proxy))
    assert outcomes == ["unavailable"] * ROUNDS


async def _under_oom(url: str) -> tuple[str, str, bool]:
    client = CacheClient.from_url(url, timeout_s=1.0, entry_ttl_ms=60_000, fence_ms=10_000, namespace="oom")
    admin = redis.asyncio.Redis.from_url(url)
    try:
        seen = await client.read("d", ["s"], "id", lease_token="t", count=False)  # the namespace is known
        await admin.config_set("maxmemory", 1)  # over the limit, and nothing is evictable
        try:
            try:
                await client.fill("d", ["s"], seen.generations, b"value", "t")
                fill = "stored"
            except CacheUnavailable as exc:
                fill = str(exc)
            # Reads, and a write's fence and release, run even so (Redis >= 7: flagged allow-oom):
            # no bypass for the read, no 503 for the write.
            assert not (await client.read("d", ["s"], "id", lease_token="t", count=True)).hit
            token = uuid.uuid4().hex
            await client.fence(["s"], token)
            await client.release(["s"], token)
            write = "fenced and released"
        finally:
            await admin.config_set("maxmemory", "256mb")
        # At once: Redis answered the refused fill; there was nothing to wait out (no backoff).
        seen = await client.read("d", ["s"], "id", lease_token="t2", count=False)
        return fill, write, await client.fill("d", ["s"], seen.generations, b"value", "t2")
    finally:
        await client.aclose()
        await admin.aclose()


def test_over_maxmemory_only_fills_are_refused_and_without_a_backoff() -> None:
    server = EmbeddedRedis(scratch("redis-oom"), namespace="oom")
    url = server.start()
    try:
        fill, write, filled_after = asyncio.run(_under_oom(url))
    finally:
        server.stop()
    assert "maxmemory" in fill
    assert write == "fenced and released"
    assert filled_after

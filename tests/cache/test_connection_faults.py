"""The cache client when one worker's connection to Redis fails (through the nemesis's FaultyProxy,
on the event loop the server runs, uvloop): every call either works or raises ``CacheUnavailable``,
which reads answer with a bypass and writes with a 503. Nothing else may escape.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from urllib.parse import urlsplit

import uvloop

from rerum_server.cache.client import CacheClient, CacheUnavailable
from rerum_server.verify.proxy import FaultyProxy

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

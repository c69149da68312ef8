"""In-process Reads/Writes over a real PostgreSQL and a real Redis, with pause points (probes).

Interleaving tests arm a probe, start a read or a write as a task, wait until it is parked at the
probe, let another operation run to completion, then release the parked one: no sleeps, only events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import orjson

from rerum_server.cache.client import CacheClient
from rerum_server.cache.guard import CommitGuard
from rerum_server.reads import Reads
from rerum_server.store.migrate import migrate
from rerum_server.store.pool import open_pool
from rerum_server.versioning.metadata import Naming
from rerum_server.writes import Writes

T = TypeVar("T")
NAMING = Naming(id_prefix="http://rerum.test/v1/id/", context_url="http://rerum.test/v1/context.json")
AGENT = "http://rerum.test/agent/harness"
FENCE_MS = 10_000


@dataclass
class Gate:
    """One armed pause point: ``reached`` is set when a task arrives, which then waits for ``resume``."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)
    resume: asyncio.Event = field(default_factory=asyncio.Event)


class Probes:
    """Named pause points; each armed gate stops the first task that arrives there, once."""

    def __init__(self) -> None:
        self._gates: dict[str, Gate] = {}

    def arm(self, point: str) -> Gate:
        gate = Gate()
        self._gates[point] = gate
        return gate

    async def __call__(self, point: str) -> None:
        gate = self._gates.pop(point, None)
        if gate is not None:
            gate.reached.set()
            await gate.resume.wait()


@dataclass
class Harness:
    pool: asyncpg.Pool
    cache: CacheClient
    reads: Reads
    writes: Writes
    probes: Probes
    queries: list[str]

    def count_round_trips(self) -> list[str]:
        """Record every command the cache client sends from now on (each ``execute_command`` is one
        round trip)."""
        sent: list[str] = []
        original = self.cache.redis.execute_command

        async def counting(*args: Any, **options: Any) -> Any:
            sent.append(str(args[0]))
            return await original(*args, **options)

        self.cache.redis.execute_command = counting  # type: ignore[method-assign]
        return sent

    async def read_json(self, answered: Awaitable[tuple[Any, str]]) -> tuple[Any, str]:
        """A read's parsed body (or ("404", message)) and its X-Cache status."""
        answer, status = await answered
        if answer.not_found is not None:
            return ("404", answer.not_found), status
        return orjson.loads(answer.body), status


async def run(
    dsn: str,
    redis_url: str,
    namespace: str,
    scenario: Callable[[Harness], Awaitable[T]],
    *,
    cache_factory: Callable[..., CacheClient] = CacheClient.from_url,
) -> T:
    """Build a harness on fresh connections, run ``scenario`` in it, close everything."""
    queries: list[str] = []

    async def log_queries(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(lambda record: queries.append(record.query))

    pool = await open_pool(dsn, size=8, statement_timeout_ms=10_000, init=log_queries)
    async with pool.acquire() as connection:
        await migrate(connection)
    cache = cache_factory(
        redis_url,
        timeout_s=1.0,
        entry_ttl_ms=60_000,
        fence_ms=FENCE_MS,
        namespace=namespace,
        flush_interval_s=3600.0,  # counts reach Redis only when a test asks for the statistics
    )
    probes = Probes()
    harness = Harness(
        pool=pool,
        cache=cache,
        reads=Reads(pool, NAMING.id_prefix, cache, probe=probes),
        writes=Writes(
            pool, NAMING, guard=CommitGuard(cache, fence_ms=FENCE_MS, margin_ms=1000, probe=probes)
        ),
        probes=probes,
        queries=queries,
    )
    try:
        return await scenario(harness)
    finally:
        await cache.aclose()
        await pool.close()

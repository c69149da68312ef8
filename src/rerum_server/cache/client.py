"""The cache protocol's round trips, each one atomic Lua script: read, fill, fence, release.

Guarantees the callers rely on:
- every script first checks that it runs on the server whose ``run_id`` names the namespace; on
  another server it changes nothing and the client moves to the new namespace;
- a timeout drops the connection (redis-py does), so a late reply is never read as the answer to the
  next command, and every check lives inside the scripts, so a late command is harmless;
- while Redis is failing, calls fail fast (``CacheUnavailable``) until a backoff with jitter has
  passed, so no request waits on a dead Redis more than once per backoff period;
- a hit writes nothing to Redis: hits, misses and other events are counted here and shipped to the
  cluster-wide statistics once per ``flush_interval_s`` (and before this worker answers the stats).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from rerum_server import metrics
from rerum_server.cache.keys import Namespace, young_for_ms
from rerum_server.cache.local_copies import LocalCopies
from rerum_server.cache.packing import with_hiredis_packing

log = logging.getLogger("rerum_server.cache")


class CacheUnavailable(Exception):
    """Redis did not answer in time, refused, or is in its backoff period."""


@dataclass(frozen=True)
class ReadResult:
    """The outcome of the read script."""

    hit: bool
    value: bytes | None = None
    generations: str = ""
    fill: int = 0  # 1: this reader fills, 2: another reader holds the lease, 0: must not fill


def _script(name: str, flags: str | None = None) -> str:
    lua = files("rerum_server.cache").joinpath("lua")
    text = lua.joinpath("prelude.lua").read_text() + "\n" + lua.joinpath(name).read_text()
    return text if flags is None else f"#!lua flags={flags}\n{text}"


# Scripts that run even while Redis is over maxmemory (evicting to catch up): a refused fence would
# refuse the write itself (503), a refused read would send it to PostgreSQL. They add only small keys
# with TTLs (generations, leases, fences of writes in flight), which eviction then makes room for; the
# fill, which adds the entries, stays refused. Script flags exist from Redis 7.0 on (Valkey too); on
# 6.2 every script runs unflagged and is refused under OOM.
OOM_ALLOWED = ("read", "fence", "release")


class ServerChanged(Exception):
    """The script ran on a server with another run_id than the namespace's."""


class CacheClient:
    """One worker's connection to the cache Redis (a pool), its namespace and its backoff state."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        entry_ttl_ms: int,
        fence_ms: int,
        entry_ttls_ms: Mapping[str, int] | None = None,
        lease_ms: int = 250,
        backoff_cap_s: float = 1.0,
        namespace: str = "rerum",
        flush_interval_s: float = 1.0,
        local_copy_bytes: int = 0,
        local_copy_min_bytes: int = 16_384,
    ) -> None:
        self.redis = redis
        self.entry_ttl_ms = entry_ttl_ms
        self.entry_ttls_ms = dict(entry_ttls_ms or {})
        # Generations outlive the longest-lived entry: an entry whose generations expired can never
        # hit again (a missing generation is minted anew, so it only costs misses, never staleness).
        self.generation_ttl_ms = 2 * max([entry_ttl_ms, *self.entry_ttls_ms.values()])
        self.fence_ms = fence_ms
        self.lease_ms = lease_ms
        self._backoff_cap_s = backoff_cap_s
        self._failures = 0
        self._retry_at = 0.0
        self._namespace_name = namespace
        self._namespace: Namespace | None = None
        self._pending: dict[str, int] = {}
        self.local = LocalCopies(max_bytes=local_copy_bytes, min_bytes=local_copy_min_bytes,
                                 ttl_s=entry_ttl_ms / 1000)  # fmt: skip
        self._flush_interval_s = flush_interval_s
        self._flusher: asyncio.Task[None] | None = None
        self._scripts = {name: redis.register_script(_script(name + ".lua")) for name in
                         ("read", "fill", "fence", "release", "stats", "clear", "count")}  # fmt: skip
        self._oom_scripts = {name: redis.register_script(_script(name + ".lua", "allow-oom"))
                             for name in OOM_ALLOWED}  # fmt: skip
        self._flags_supported = False

    @classmethod
    def from_url(
        cls, url: str, *, timeout_s: float, redis_connect_func: Any = None, **options: Any
    ) -> CacheClient:
        """A client for ``url`` (redis://, rediss://, unix://) with timeouts and no hidden retries."""
        connection = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            redis_connect_func=redis_connect_func,
        )
        pool = connection.connection_pool
        pool.connection_class = with_hiredis_packing(pool.connection_class)
        return cls(connection, **options)

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.redis.aclose()

    # ------------------------------------------------------------------ plumbing

    async def namespace(self) -> Namespace:
        if self._namespace is None:
            self.local.clear()  # copies were confirmed by another server's generations
            info = await self._call(self.redis.info("server"))
            major = str(info.get("redis_version", "0")).split(".", 1)[0]
            self._flags_supported = major.isdigit() and int(major) >= 7
            self._namespace = Namespace(str(info["run_id"]), self._namespace_name)
        return self._namespace

    async def _call(self, awaitable: Any) -> Any:
        if time.monotonic() < self._retry_at:
            awaitable.close()
            raise CacheUnavailable("Redis is in its reconnect backoff")
        try:
            result = await awaitable
        except ResponseError as exc:
            # Redis answered at once, with an error (OOM under maxmemory, a script error ...): this call
            # fails, the next may not, and none will wait on it, so no backoff (one OOM used to refuse
            # a worker's writes for up to a second while Redis was evicting and answering normally).
            raise CacheUnavailable(str(exc)) from exc
        except (TimeoutError, RedisError, OSError, RuntimeError) as exc:
            # RuntimeError: uvloop's answer to a write on a connection the peer has just reset (seen
            # under the nemesis's proxy-reset fault); any other failure of the call counts the same.
            self._failures += 1
            metrics.REDIS_FAILURES.inc()
            delay = min(self._backoff_cap_s, 0.05 * 2 ** min(self._failures, 10))
            self._retry_at = time.monotonic() + random.uniform(delay / 2, delay)
            raise CacheUnavailable(str(exc) or type(exc).__name__) from exc
        self._failures = 0
        return result

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> list[Any]:
        """Run a script; on a changed server, move to the new namespace and raise ``ServerChanged``."""
        scripts = self._oom_scripts if self._flags_supported and name in OOM_ALLOWED else self._scripts
        started = time.perf_counter()
        try:
            result = await self._call(scripts[name](keys=keys, args=args))
        finally:
            metrics.timed_script(name, started)
        if isinstance(result, list) and result and result[0] == -1:
            self._namespace = None
            raise ServerChanged(name)
        return result

    async def _scripted(self, name: str, build: Any) -> list[Any]:
        """Run the script built by ``build(namespace)``, once more if the server changed meanwhile."""
        for attempt in (1, 2):
            namespace = await self.namespace()
            keys, args = build(namespace)
            try:
                return await self._run(name, keys, [namespace.run_id, *args])
            except ServerChanged:
                if attempt == 2:
                    raise CacheUnavailable("the Redis server changed twice during one call") from None
        raise AssertionError("unreachable")

    def count_later(self, field: str, amount: int = 1) -> None:
        """Count an event (a hit, a miss, a bypass, a refused write ...) for the cluster-wide statistics.

        Counts are shipped by ``flush_counts``, at most once per flush interval, so that counting costs
        no round trip and a hit no write.
        """
        self._pending[field] = self._pending.get(field, 0) + amount
        metrics.count_event(field, amount)
        if self._flusher is None or self._flusher.done():
            with contextlib.suppress(RuntimeError):  # no running loop: the next call in one starts it
                self._flusher = asyncio.get_running_loop().create_task(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval_s)
            if not self._pending:
                return  # idle: the next count starts a new flusher
            with contextlib.suppress(CacheUnavailable):
                await self.flush_counts()

    async def flush_counts(self) -> None:
        """Ship this worker's counts to the statistics (kept for a later try if Redis fails)."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            await self._scripted(
                "count", lambda ns: ([ns.born, ns.stats], [x for p in pending.items() for x in p])
            )
        except CacheUnavailable:
            for field, amount in pending.items():
                self._pending[field] = self._pending.get(field, 0) + amount
            raise

    def entry_ttl(self, endpoint: str) -> int:
        """The lifetime in milliseconds of an entry of this read kind (``id``, ``query`` ...)."""
        return self.entry_ttls_ms.get(endpoint, self.entry_ttl_ms)

    # ------------------------------------------------------------------ the protocol

    async def read(
        self, digest: str, stamps: list[str], endpoint: str, *, lease_token: str, count: bool
    ) -> ReadResult:
        """Fetch the entry and the state of its stamps in one round trip (which writes nothing on a hit).

        When this worker holds a copy of the value, the script is told its generations and, if they are
        the current ones, confirms the copy instead of sending the value again.
        """
        # Taken once: the copy confirmed is the one whose generations were sent, whatever other
        # requests store meanwhile.
        copy = self.local.get(digest)

        def build(ns: Namespace) -> tuple[list[str], list[Any]]:
            keys = [ns.born, ns.stats, ns.entry(digest), ns.lease(digest), *ns.stamp_keys(stamps)]
            args = [secrets.token_hex(16), self.generation_ttl_ms, self.lease_ms, lease_token, self.fence_ms,
                    copy.generations if copy is not None else ""]  # fmt: skip
            return keys, args

        result = await self._scripted("read", build)
        outcome = "hits" if result[0] == 1 else "misses"
        if count:
            self.count_later(outcome)
            self.count_later(f"{endpoint}:{outcome}")
        if result[0] == 1 and len(result) == 1:
            assert copy is not None, "the script confirmed a copy this worker did not offer"
            self.count_later("localHits")
            return ReadResult(hit=True, value=copy.value)
        if result[0] == 1:
            self.local.offer(digest, result[2].decode(), result[1])
            return ReadResult(hit=True, value=result[1])
        return ReadResult(hit=False, generations=result[1].decode(), fill=int(result[2]))

    async def fill(
        self,
        digest: str,
        stamps: list[str],
        generations: str,
        value: bytes,
        lease_token: str,
        *,
        ttl_ms: int | None = None,
    ) -> bool:
        """Store ``value`` for ``ttl_ms`` (default: ``entry_ttl_ms``) unless a stamp's generation moved or
        a fence appeared since the read script."""
        ttl_ms = self.entry_ttl_ms if ttl_ms is None else ttl_ms

        def build(ns: Namespace) -> tuple[list[str], list[Any]]:
            keys = [ns.born, ns.stats, ns.entry(digest), ns.lease(digest), ns.index, ns.sizes,
                    *ns.stamp_keys(stamps)]  # fmt: skip
            return keys, [generations, value, ttl_ms, lease_token]

        namespace = await self.namespace()
        keys, args = build(namespace)
        # No retry on another server: the generations were seen in the old namespace.
        result = await self._run("fill", keys, [namespace.run_id, *args])
        metrics.count_event("fills" if result == 1 else "refusedFills")
        if result == 1:
            self.local.offer(digest, generations, value)
        return result == 1

    async def fence(self, stamps: list[str], token: str) -> None:
        """Before COMMIT: new generations and this write's fence on every stamp."""

        def build(ns: Namespace) -> tuple[list[str], list[Any]]:
            return [ns.born, ns.stats, *ns.stamp_keys(stamps)], [token, self.fence_ms, self.generation_ttl_ms]

        await self._scripted("fence", build)
        metrics.count_event("fences")

    async def release(self, stamps: list[str], token: str) -> None:
        """After COMMIT: new generations again and this write's fence removed."""

        def build(ns: Namespace) -> tuple[list[str], list[Any]]:
            return [ns.born, ns.stats, *ns.stamp_keys(stamps)], [token, self.generation_ttl_ms]

        await self._scripted("release", build)

    async def statistics(self) -> tuple[dict[str, int], int]:
        """The cluster-wide counters (this worker's up to now, the others' up to their last flush) and
        the number of live entries."""
        await self.flush_counts()

        def build(ns: Namespace) -> tuple[list[str], list[Any]]:
            return [ns.born, ns.stats, ns.index, ns.sizes], []

        result = await self._scripted("stats", build)
        flat = result[1]
        counters = {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return counters, int(result[2])

    async def young_for_ms(self) -> int:
        """How much longer the namespace refuses fills because it is new (0: it no longer does).

        A namespace no read has used yet is as young as it gets: its clock starts at the first read.
        """
        namespace = await self.namespace()
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(namespace.born)
        pipe.time()
        born, (seconds, micros) = await self._call(pipe.execute())
        return young_for_ms(born, seconds * 1000 + micros // 1000, self.fence_ms)

    async def clear(self, all_stamp: str) -> tuple[int, int]:
        """Make every entry unreachable (O(1)); returns the entries and bytes that were live."""

        def build(ns: Namespace) -> tuple[list[str], list[Any]]:
            keys = [ns.born, ns.stats, ns.index, ns.sizes, ns.generation(all_stamp)]
            return keys, [secrets.token_hex(16), self.generation_ttl_ms]

        result = await self._scripted("clear", build)
        return int(result[1]), int(result[2])

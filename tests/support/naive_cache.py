"""Deliberately broken caches, for negative controls only: the tests must catch their stale reads.

- ``StaleFillCacheClient``: the usual "delete after the write, fill after the read" cache; its fill
  takes the generations current at fill time instead of those seen before the database read.
- ``LocalCacheClient``: per-process caches invalidated only in the process that wrote (the
  reference server's PM2 design); ``create_app`` runs a whole cluster with it.
- ``UnscopedCacheClient``: the real protocol with its keys no longer scoped by the Redis server's
  ``run_id``, so a Redis restarted from an old snapshot serves the entries of that snapshot;
  ``create_unscoped_app`` runs a whole cluster with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from rerum_server.app import RerumApp
from rerum_server.cache.client import CacheClient, ReadResult
from rerum_server.cache.keys import Namespace
from rerum_server.settings import Settings


class StaleFillCacheClient(CacheClient):
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
        current = await self.read(digest, stamps, "naive", lease_token=lease_token, count=False)
        if current.hit:
            return False
        return await super().fill(digest, stamps, current.generations, value, lease_token, ttl_ms=ttl_ms)


class LocalCacheClient(CacheClient):
    """A process-local dict standing in for Redis: no fences, no cross-process invalidation."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[set[str], bytes]] = {}

    def entry_ttl(self, endpoint: str) -> int:
        return 0  # entries live until a local write drops them

    async def read(
        self, digest: str, stamps: list[str], endpoint: str, *, lease_token: str, count: bool
    ) -> ReadResult:
        if digest in self.entries:
            return ReadResult(hit=True, value=self.entries[digest][1])
        return ReadResult(hit=False, generations="", fill=1)

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
        self.entries[digest] = (set(stamps), value)
        return True

    async def fence(self, stamps: list[str], token: str) -> None:
        touched = set(stamps)
        for digest in [d for d, (entry_stamps, _) in self.entries.items() if entry_stamps & touched]:
            del self.entries[digest]

    async def release(self, stamps: list[str], token: str) -> None:
        return None

    def count_later(self, field: str) -> None:
        return None

    async def statistics(self) -> tuple[dict[str, int], int]:
        return {}, len(self.entries)

    async def aclose(self) -> None:
        return None


class LocalCacheApp(RerumApp):
    def cache_client(self, settings: Settings) -> Any:
        return LocalCacheClient()


def create_app() -> RerumApp:
    """The ASGI factory of a cluster whose workers each keep their own cache."""
    return LocalCacheApp()


@dataclass(frozen=True)
class UnscopedNamespace(Namespace):
    """The same keys on every Redis server: the scripts still see the live run_id, the keys do not."""

    @cached_property
    def prefix(self) -> str:
        return self.name + ":{unscoped}:"


class UnscopedCacheClient(CacheClient):
    async def namespace(self) -> Namespace:
        scoped = await super().namespace()
        return UnscopedNamespace(scoped.run_id, scoped.name)


class UnscopedApp(RerumApp):
    def cache_client(self, settings: Settings) -> Any:
        client = super().cache_client(settings)
        assert client is not None
        # Built exactly as production builds it; only the namespace method changes.
        client.__class__ = UnscopedCacheClient
        return client


def create_unscoped_app() -> RerumApp:
    """The ASGI factory of a cluster whose cache keys ignore which Redis server holds them."""
    return UnscopedApp()

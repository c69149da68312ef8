"""What ``rerum import`` and ``rerum export`` do around the data: the database, and the cache's safety.

The cache must never serve an answer older than the import. Every cached entry depends on the stamp
``all``; changing its generation after the last batch is committed (what ``POST /v1/api/cache/clear``
does) makes every entry filled before unreachable, and a fill that had read the database before the
change is refused because the generation it saw has moved. So an import needs the Redis of the servers
that read the database, and refuses to start without it, unless nothing can have cached it: the
embedded PostgreSQL of a data dir that no server runs on (its server's private Redis starts empty), or
``CACHE_ENABLED=false``, the operator's word that no caching server reads this database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import asyncpg

from rerum_server.cache.client import CacheClient, CacheUnavailable
from rerum_server.cache.safety import connect_check
from rerum_server.cache.stamps import ALL
from rerum_server.embedded.postgres import EmbeddedPostgres
from rerum_server.interchange.framing import Item
from rerum_server.interchange.pipeline import Summary, run_import
from rerum_server.interchange.prefixes import IdRewrite
from rerum_server.settings import Settings
from rerum_server.store.importing import Loader, exported_bodies


class CommandError(Exception):
    """The command cannot run (or could not finish safely); the message tells the operator what to do."""


@dataclass(frozen=True)
class CacheOutcome:
    cleared: bool
    note: str


def check_cache_reachable(settings: Settings, data_dir: Path) -> None:
    """Refuse an import whose end could leave cached answers behind, before anything is written
    (the embedded PostgreSQL of a running server is refused when it is opened)."""
    if not settings.cache_enabled:
        return
    if settings.redis_url:
        return
    if settings.database_url:
        raise CommandError(
            "Servers reading DATABASE_URL may cache it in a Redis this command cannot reach, and their "
            "entries would predate the import: set REDIS_URL (or REDIS_HOST) to their Redis so the "
            "import can clear it, or CACHE_ENABLED=false if no caching server reads this database."
        )


@contextlib.asynccontextmanager
async def _database(settings: Settings, data_dir: Path, *, writes: bool) -> AsyncIterator[asyncpg.Connection]:
    """A connection to DATABASE_URL, or to the data dir's embedded PostgreSQL (started if need be)."""
    embedded = None
    dsn = settings.database_url
    if not dsn:
        embedded = EmbeddedPostgres(data_dir)
        attached = embedded.running()
        if attached and writes:
            raise CommandError(
                f"A server is running on {data_dir / 'postgres'}, with a private Redis this command "
                "cannot reach: stop it first (its Redis starts empty next time)."
            )
        dsn = embedded.start()
        if attached:
            embedded = None  # someone else's server: used, never stopped
    try:
        connection = await asyncpg.connect(dsn, server_settings={"application_name": "rerum/import"})
        try:
            yield connection
        finally:
            await connection.close()
    finally:
        if embedded is not None:
            embedded.stop()


def _cache(settings: Settings) -> CacheClient:
    return CacheClient.from_url(
        settings.redis_url,
        timeout_s=max(1.0, settings.redis_timeout_ms / 1000),
        entry_ttl_ms=settings.cache_ttl_ms,
        fence_ms=settings.cache_fence_ms,
        namespace=settings.cache_namespace,
        redis_connect_func=connect_check(allow_allkeys=settings.allow_allkeys_eviction),
    )


async def _ping(settings: Settings) -> None:
    cache = _cache(settings)
    try:
        await cache.namespace()
    except CacheUnavailable as exc:
        raise CommandError(
            f"The cache Redis ({settings.cache_namespace}) cannot be reached ({exc}); the import could "
            "not clear it afterwards, so it did not start."
        ) from exc
    finally:
        await cache.aclose()


async def _clear(settings: Settings) -> CacheOutcome:
    if not (settings.cache_enabled and settings.redis_url):
        return CacheOutcome(False, "no cache to clear")
    cache = _cache(settings)
    try:
        entries, _ = await cache.clear(ALL)
    except CacheUnavailable as exc:
        raise CommandError(
            f"The cache could not be cleared after the import ({exc}): clear it with "
            "POST /v1/api/cache/clear (or rerun this import, which clears it at its end) before "
            "trusting reads of the imported objects."
        ) from exc
    finally:
        await cache.aclose()
    return CacheOutcome(True, f"cache namespace {settings.cache_namespace!r} cleared ({entries:,} entries)")


async def import_items(
    settings: Settings,
    data_dir: Path,
    identity: str,
    items: Iterator[Item],
    *,
    rewrite: IdRewrite | None,
    progress: Callable[[int], None],
) -> tuple[Summary, CacheOutcome]:
    """Run the import; the cache is cleared after it, also when it stops half-way (what it stored)."""
    if settings.cache_enabled and settings.redis_url:
        await _ping(settings)
    try:
        async with _database(settings, data_dir, writes=True) as connection:
            summary = await run_import(
                Loader(connection, identity), items, rewrite=rewrite, progress=progress
            )
    finally:
        # Also after an interruption or a failure: what was committed must not hide behind old entries.
        outcome = await _clear(settings)
    return summary, outcome


async def export_to(settings: Settings, data_dir: Path, out: TextIO, *, json_array: bool) -> int:
    """Write every stored document, in insertion order; returns how many."""
    count = 0
    async with _database(settings, data_dir, writes=False) as connection:
        if json_array:
            out.write("[")
        async for body in exported_bodies(connection):
            if json_array:
                out.write(",\n" if count else "\n")
                out.write(body)
            else:
                out.write(body + "\n")
            count += 1
        if json_array:
            out.write("\n]\n" if count else "]\n")
    return count

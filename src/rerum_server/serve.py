"""The cluster: checks first, embedded stores up, N worker processes sharing one listening socket, stop.

Nothing starts before the configuration is validated, the address is claimed and an external cache
Redis has accepted our credentials. Workers are separate processes started by granian from an import
path, so everything they need travels through the environment: the parent resolves ``DATABASE_URL``
(starting the embedded PostgreSQL when none is set) before the workers exist. Nothing outlives the
parent: workers die with it (``worker.py``), the embedded stores are stopped by a watchdog
(``embedded/watchdog.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg

from rerum_server import address, logs
from rerum_server.auth.local_key import ensure_local_key
from rerum_server.cache import preflight
from rerum_server.embedded.postgres import EmbeddedPostgres
from rerum_server.embedded.redis import EmbeddedRedis
from rerum_server.embedded.watchdog import Watchdog
from rerum_server.settings import Settings
from rerum_server.store.migrate import migrate
from rerum_server.worker import load_app

log = logging.getLogger("rerum_server.serve")


async def _migrate_once(dsn: str, *, embedded: bool) -> str:
    """Migrate the schema; returns one phrase for the start-up log naming the PostgreSQL."""
    connection = await asyncpg.connect(dsn)
    try:
        await migrate(connection)
        ssl = await connection.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        version = connection.get_settings().server_version
    finally:
        await connection.close()
    parts = urlsplit(dsn)
    host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
    where = f"socket {host}" if host.startswith("/") else f"{host}:{parts.port or 5432}"
    database = parts.path.lstrip("/") or "(default database)"
    return (
        f"{'embedded' if embedded else 'external'} PostgreSQL {version} at {where}, database {database}, "
        f"TLS {'on' if ssl else 'off'}"
    )


def _metrics_dir(data_dir: Path) -> Path:
    """A fresh directory for the workers' metrics files, exported to them (prometheus_client reads it
    when first imported, so before any worker exists). Directories of servers that are gone are removed."""
    parent = data_dir / "metrics"
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.iterdir():
        if not old.name.isdigit() or not _alive(int(old.name)) or int(old.name) == os.getpid():
            shutil.rmtree(old, ignore_errors=True)
    directory = parent / str(os.getpid())
    directory.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_metrics(
    directory: Path, stop: threading.Event, mark_process_dead: Callable[[int, str], None]
) -> None:
    """Forget the live gauges of dead workers (granian respawns them): a pool gauge would otherwise
    count a dead worker's connections forever. Their counters stay, so no request is uncounted."""
    dead: set[int] = set()
    while not stop.wait(1.0):
        for path in directory.glob("gauge_live*_*.db"):
            pid = int(path.stem.rsplit("_", 1)[1])
            if pid not in dead and not _alive(pid):
                mark_process_dead(pid, str(directory))
                dead.add(pid)


APP = "rerum_server.app:create_app"


def serve(host: str, port: int, workers: int, data_dir: Path, *, app: str = APP) -> None:
    """Run the cluster until SIGINT/SIGTERM; stops the embedded PostgreSQL and Redis it started.

    Refuses to start (``SettingsError``, ``AddressUnavailable``, ``CredentialsRefused``) before starting
    anything. ``app`` is the import path of the workers' ASGI factory (tests substitute deliberately
    broken cache variants here to prove that their checks can fail).
    """
    data_dir = data_dir.resolve()
    os.environ["RERUM_DATA_DIR"] = str(data_dir)
    os.environ["PORT"] = str(port)
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level, queued=False)
    claim = address.claim(host, port)
    try:
        if settings.cache_enabled and settings.redis_url:
            asyncio.run(preflight.check(settings.redis_url, timeout_s=settings.redis_timeout_ms / 1000))
        data_dir.mkdir(parents=True, exist_ok=True)
        _run(host, port, workers, data_dir, app, settings, claim)
    finally:
        claim.close()


def _run(
    host: str, port: int, workers: int, data_dir: Path, app: str, settings: Settings, claim: socket.socket
) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    embedded = None if settings.database_url else EmbeddedPostgres(data_dir)
    embedded_redis = None
    if settings.cache_enabled and not settings.redis_url:
        embedded_redis = EmbeddedRedis(
            data_dir, maxmemory=settings.redis_maxmemory, namespace=settings.cache_namespace
        )
    watchdog = Watchdog()
    metrics_dir = _metrics_dir(data_dir) if settings.metrics_enabled else None
    stop_reaping = threading.Event()
    try:
        if embedded is not None:
            os.environ["DATABASE_URL"] = embedded.start()
            watchdog.watch(embedded.pid, signal.SIGINT)  # PostgreSQL's fast shutdown
        if embedded_redis is not None:
            os.environ["REDIS_URL"] = embedded_redis.start()
            watchdog.watch(embedded_redis.pid, signal.SIGTERM)
        settings = Settings.from_env()
        if settings.uses_local_issuer:
            ensure_local_key(data_dir)
        database = asyncio.run(_migrate_once(settings.database_url, embedded=embedded is not None))
        log.info("database: %s", database)
        if settings.cache_enabled:
            cache = asyncio.run(
                preflight.describe(
                    settings.redis_url,
                    embedded=embedded_redis is not None,
                    namespace=settings.cache_namespace,
                    fence_ms=settings.cache_fence_ms,
                    timeout_s=settings.redis_timeout_ms / 1000,
                )
            )
            log.info("cache: %s", cache)
        else:
            log.info("cache: off (CACHE_ENABLED=false), every cacheable read answers X-Cache: BYPASS")
        if metrics_dir is not None:
            # Imported here, in the main thread: an import running in the thread when granian forks a
            # worker would leave the worker's import lock held forever (the directory is set by now).
            from prometheus_client.multiprocess import mark_process_dead

            reaper = (metrics_dir, stop_reaping, mark_process_dead)
            threading.Thread(target=_reap_metrics, args=reaper, name="metrics-reaper", daemon=True).start()
        server = Granian(
            app,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            respawn_failed_workers=True,
            respawn_interval=0.5,
            log_access=False,
            log_dictconfig=logs.GRANIAN_LOGGING,
        )
        log.info("serving on http://%s:%d with %d workers", host, port, workers)
        claim.close()  # granian binds the address next
        server.serve(target_loader=partial(load_app, os.getpid()))
    finally:
        stop_reaping.set()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if embedded_redis is not None:
            embedded_redis.stop()
        if embedded is not None:
            embedded.stop()
        watchdog.stand_down()

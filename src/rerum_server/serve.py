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
import signal
import socket
from functools import partial
from pathlib import Path

import asyncpg

from rerum_server import address
from rerum_server.auth.local_key import ensure_local_key
from rerum_server.cache import preflight
from rerum_server.embedded.postgres import EmbeddedPostgres
from rerum_server.embedded.redis import EmbeddedRedis
from rerum_server.embedded.watchdog import Watchdog
from rerum_server.settings import Settings
from rerum_server.store.migrate import migrate
from rerum_server.worker import load_app

log = logging.getLogger("rerum_server.serve")


async def _migrate_once(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await migrate(connection)
    finally:
        await connection.close()


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
        asyncio.run(_migrate_once(settings.database_url))
        server = Granian(
            app,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            respawn_failed_workers=True,
            respawn_interval=0.5,
            log_access=False,
        )
        log.info("serving on http://%s:%d with %d workers", host, port, workers)
        claim.close()  # granian binds the address next
        server.serve(target_loader=partial(load_app, os.getpid()))
    finally:
        if embedded_redis is not None:
            embedded_redis.stop()
        if embedded is not None:
            embedded.stop()
        watchdog.stand_down()

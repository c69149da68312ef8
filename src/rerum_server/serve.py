"""The cluster: embedded stores up, N worker processes sharing one listening socket, orderly stop.

Workers are separate processes started by granian from an import path, so everything they need
travels through the environment: the parent resolves ``DATABASE_URL`` (starting the embedded
PostgreSQL when none is set) before the workers exist.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import asyncpg

from rerum_server.auth.local_key import ensure_local_key
from rerum_server.embedded.postgres import EmbeddedPostgres
from rerum_server.embedded.redis import EmbeddedRedis
from rerum_server.settings import Settings
from rerum_server.store.migrate import migrate

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

    ``app`` is the import path of the workers' ASGI factory (tests substitute deliberately broken
    cache variants here to prove that their checks can fail).
    """
    from granian import Granian
    from granian.constants import Interfaces

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["RERUM_DATA_DIR"] = str(data_dir)
    os.environ["PORT"] = str(port)
    embedded = None if os.environ.get("DATABASE_URL") else EmbeddedPostgres(data_dir)
    embedded_redis: EmbeddedRedis | None = None
    try:
        if embedded is not None:
            os.environ["DATABASE_URL"] = embedded.start()
        settings = Settings.from_env()
        if settings.cache_enabled and not settings.redis_url:
            embedded_redis = EmbeddedRedis(
                data_dir,
                maxmemory=os.environ.get("RERUM_REDIS_MAXMEMORY", "256mb"),
                namespace=settings.cache_namespace,
            )
            os.environ["REDIS_URL"] = embedded_redis.start()
            settings = Settings.from_env()
        if settings.uses_local_issuer:
            ensure_local_key(data_dir)
        asyncio.run(_migrate_once(settings.database_url))
        log.info("serving on http://%s:%d with %d workers", host, port, workers)
        Granian(
            app,
            factory=True,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            respawn_failed_workers=True,
            respawn_interval=0.5,
            log_access=False,
        ).serve()
    finally:
        if embedded_redis is not None:
            embedded_redis.stop()
        if embedded is not None:
            embedded.stop()

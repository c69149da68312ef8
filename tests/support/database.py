"""A PostgreSQL for the test session: the embedded server, or the one named by RERUM_TEST_DATABASE_URL."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from rerum_server.embedded.postgres import EmbeddedPostgres
from tests.support.server import scratch


class DatabaseServer:
    """Owns a PostgreSQL server (embedded unless configured) and hands out fresh databases."""

    def __init__(self, name: str) -> None:
        configured = os.environ.get("RERUM_TEST_DATABASE_URL")
        self._embedded = None if configured else EmbeddedPostgres(scratch("database"))
        self.admin_dsn = configured or self._embedded.start()
        self._count = 0
        self._prefix = f"rerum_test_{name.replace('-', '_')}_{os.getpid()}"

    def new_database(self) -> str:
        """Create an empty database and return its DSN."""
        self._count += 1
        name = f"{self._prefix}_{self._count}"
        asyncio.run(self._execute(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
        parts = urlsplit(self.admin_dsn)
        return urlunsplit(parts._replace(path="/" + name))

    async def _execute(self, *statements: str) -> None:
        connection = await asyncpg.connect(self.admin_dsn)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    def stop(self) -> None:
        """Stop the embedded server and remove its data (test data is disposable)."""
        if self._embedded is not None:
            self._embedded.stop()
            shutil.rmtree(self._embedded.pgdata.parent, ignore_errors=True)


async def _fingerprint(dsn: str) -> tuple[int, str]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT id, body FROM rerum_objects ORDER BY seq")
    finally:
        await connection.close()
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row["id"].encode() + b"\0" + row["body"].encode() + b"\0")
    return len(rows), digest.hexdigest()


def fingerprint(dsn: str) -> tuple[int, str]:
    """Row count and a hash of every stored document: equal fingerprints mean nothing was written."""
    return asyncio.run(_fingerprint(dsn))


def fetch_stored(dsn: str, object_id: str) -> dict | None:
    """The stored document with ``_id`` = object_id, straight from the table."""
    import orjson

    async def run() -> dict | None:
        connection = await asyncpg.connect(dsn)
        try:
            body = await connection.fetchval("SELECT body FROM rerum_objects WHERE id = $1", object_id)
        finally:
            await connection.close()
        return None if body is None else orjson.loads(body)

    return asyncio.run(run())

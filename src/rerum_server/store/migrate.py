"""Schema set-up: idempotent, serialised by an advisory lock so N workers may start at once, and free
of locks when the schema is already current.

The last point matters under load: a worker replacing a crashed one starts while the others serve
writes, and DDL such as ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` takes an ACCESS EXCLUSIVE lock
even when it changes nothing; it deadlocked against live writes, the new worker failed to start, and
the server stopped (found by the verification nemesis, docs/verify.md).
"""

from __future__ import annotations

import hashlib
from importlib.resources import files

import asyncpg

_MIGRATION_LOCK = 0x52455255  # "RERU": any constant shared by every process of every version


def _schema() -> tuple[str, str]:
    """The schema script and its version (a digest of the script)."""
    schema = files("rerum_server.store").joinpath("schema.sql").read_text(encoding="utf-8")
    return schema, hashlib.sha256(schema.encode()).hexdigest()[:16]


async def _installed_version(connection: asyncpg.Connection) -> str | None:
    if await connection.fetchval("SELECT to_regclass('rerum_schema')") is None:
        return None
    return await connection.fetchval("SELECT version FROM rerum_schema")


async def migrate(connection: asyncpg.Connection, *, force: bool = False) -> None:
    """Create or update the tables, indexes and functions unless this schema version is installed.

    ``force`` runs the schema script even so: for tools that drop indexes (a bulk load builds them
    once afterwards) and need the schema's own indexes back.
    """
    schema, version = _schema()
    if not force and await _installed_version(connection) == version:
        return
    await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        if not force and await _installed_version(connection) == version:
            return  # another process installed it while this one waited for the lock
        async with connection.transaction():
            await connection.execute(schema)
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS rerum_schema (version text NOT NULL);DELETE FROM rerum_schema;"
            )
            await connection.execute("INSERT INTO rerum_schema (version) VALUES ($1)", version)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)

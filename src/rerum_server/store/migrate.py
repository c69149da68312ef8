"""Schema set-up: idempotent, and serialised by an advisory lock so N workers may start at once."""

from __future__ import annotations

from importlib.resources import files

import asyncpg

_MIGRATION_LOCK = 0x52455255  # "RERU": any constant shared by every process of every version


async def migrate(connection: asyncpg.Connection) -> None:
    """Create the table and indexes if they are missing."""
    schema = files("rerum_server.store").joinpath("schema.sql").read_text(encoding="utf-8")
    await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await connection.execute(schema)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)

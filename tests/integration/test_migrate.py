"""Schema migration: installs once, and takes no lock at all when the schema is current.

A worker that replaces a crashed one migrates while the others serve writes; a DDL lock there
deadlocked against live writes and stopped the whole server (found by the verification nemesis).
"""

from __future__ import annotations

import asyncio

import asyncpg

from rerum_server.store.migrate import migrate
from tests.support.database import DatabaseServer


async def _with_table_in_use(dsn: str) -> str:
    """Migrate again while another transaction holds the lock every write takes on the table."""
    writer, migrator = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        await migrate(migrator)
        async with writer.transaction():
            await writer.execute("LOCK TABLE rerum_objects IN ROW EXCLUSIVE MODE")
            # Any DDL on the table would now wait for the writer; fail instead of waiting.
            await migrator.execute("SET lock_timeout = '1s'")
            await migrate(migrator)
        return await migrator.fetchval("SELECT version FROM rerum_schema")
    finally:
        await writer.close()
        await migrator.close()


def test_migrating_a_current_schema_takes_no_lock_on_the_table(test_database: DatabaseServer) -> None:
    version = asyncio.run(_with_table_in_use(test_database.new_database()))
    assert len(version) == 16


async def _reinstall(dsn: str) -> tuple[int, str, bool]:
    connection = await asyncpg.connect(dsn)
    try:
        await migrate(connection)
        version = await connection.fetchval("SELECT version FROM rerum_schema")
        # An older version installed: the migration runs again and recreates what is missing.
        await connection.execute("DROP INDEX rerum_objects_prime")
        await connection.execute("UPDATE rerum_schema SET version = 'older'")
        await migrate(connection)
        rows = await connection.fetchval("SELECT count(*) FROM rerum_schema")
        now = await connection.fetchval("SELECT version FROM rerum_schema")
        index = await connection.fetchval("SELECT to_regclass('rerum_objects_prime') IS NOT NULL")
        assert now == version
        return rows, now, index
    finally:
        await connection.close()


def test_a_new_schema_version_is_installed_over_an_older_one(test_database: DatabaseServer) -> None:
    rows, _, index = asyncio.run(_reinstall(test_database.new_database()))
    assert rows == 1
    assert index


async def _forced(dsn: str) -> bool:
    connection = await asyncpg.connect(dsn)
    try:
        await migrate(connection)
        await connection.execute("DROP INDEX rerum_objects_prime")
        await migrate(connection)  # current version: nothing is touched, the index stays dropped
        assert not await connection.fetchval("SELECT to_regclass('rerum_objects_prime') IS NOT NULL")
        await migrate(connection, force=True)  # what a bulk loader runs after building its data
        return await connection.fetchval("SELECT to_regclass('rerum_objects_prime') IS NOT NULL")
    finally:
        await connection.close()


def test_a_forced_migration_recreates_what_a_bulk_load_dropped(test_database: DatabaseServer) -> None:
    assert asyncio.run(_forced(test_database.new_database()))

"""Bulk loading and dumping ``rerum_objects``: COPY in batches, resumable, idempotent; export in order.

Every batch is one transaction that also records how far the input has been stored
(``rerum_import``, keyed by a digest of the input's beginning), so an interrupted import resumes after
its last committed batch, and rows are keyed by ``_id``: a document already stored is skipped, never
replaced, which makes a second run of the same import a no-op.

A batch is first tried as one COPY straight into the table. If PostgreSQL refuses it (an ``_id`` or
slug already stored, a value jsonb cannot hold), the transaction goes back to its savepoint and the
batch is stored one document at a time, so only the documents at fault are rejected, with
PostgreSQL's reason.

Loading into an empty table (or resuming such a load) drops the secondary indexes that only reads
use (GIN over the documents and the search text, ``prime``) and builds each once at the end, which is
several times faster than maintaining them row by row; the unique indexes on ``id`` and ``slug`` stay,
as they decide which documents are already there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg

from rerum_server.interchange.records import Record
from rerum_server.store.migrate import migrate

_PROGRESS = """
CREATE TABLE IF NOT EXISTS rerum_import (
    source      text PRIMARY KEY,
    items       bigint NOT NULL DEFAULT 0,
    inserted    bigint NOT NULL DEFAULT 0,
    present     bigint NOT NULL DEFAULT 0,
    rejected    bigint NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
)"""
_ADVANCE = """
UPDATE rerum_import SET items = $2, inserted = inserted + $3, present = present + $4, rejected = rejected + $5
WHERE source = $1"""
_INSERT_ONE = """
INSERT INTO rerum_objects (id, body, doc) VALUES ($1, $2::text, ($2::text)::jsonb)
ON CONFLICT (id) DO NOTHING RETURNING seq"""
_READ_ONLY_INDEXES = ("rerum_objects_doc", "rerum_objects_search", "rerum_objects_prime")
# What PostgreSQL refuses in one document (class 22: data exceptions, class 23: constraints) — never
# a lost connection or a cancelled statement, which must stop the import instead.
_REFUSED = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


@dataclass(frozen=True, slots=True)
class Staged:
    """A document read from the input, with where it was (for the report)."""

    number: int
    where: str
    record: Record


@dataclass(frozen=True, slots=True)
class Rejection:
    number: int  # the document's position in the input, which orders the report
    where: str
    reason: str


@dataclass
class Earlier:
    """What earlier runs of the same import committed."""

    items: int = 0
    inserted: int = 0
    present: int = 0
    rejected: int = 0
    finished: bool = False


@dataclass
class BatchResult:
    inserted: int = 0
    present: int = 0
    rejected: list[Rejection] = field(default_factory=list)


class Loader:
    """The store's side of one import, over one connection of its own."""

    def __init__(self, connection: asyncpg.Connection, source: str) -> None:
        self.connection = connection
        self.source = source
        self.dropped_indexes = False

    async def start(self) -> Earlier:
        """Install the schema, find what earlier runs stored, and drop read-only indexes for a bulk load."""
        # Losing the last commits in a crash is harmless here: each batch records its own progress in
        # the same transaction, so a rerun starts exactly after what survived.
        await self.connection.execute("SET synchronous_commit = off; SET statement_timeout = 0")
        await migrate(self.connection)
        await self.connection.execute(_PROGRESS)
        await self.connection.execute(
            "INSERT INTO rerum_import (source) VALUES ($1) ON CONFLICT (source) DO NOTHING", self.source
        )
        row = await self.connection.fetchrow("SELECT * FROM rerum_import WHERE source = $1", self.source)
        earlier = Earlier(
            row["items"], row["inserted"], row["present"], row["rejected"], row["finished_at"] is not None
        )
        empty = await self.connection.fetchval("SELECT NOT EXISTS (SELECT 1 FROM rerum_objects)")
        missing = await self.connection.fetchval(
            "SELECT bool_or(to_regclass(name) IS NULL) FROM unnest($1::text[]) AS name", _READ_ONLY_INDEXES
        )
        if empty or missing:
            for name in _READ_ONLY_INDEXES:
                await self.connection.execute(f"DROP INDEX IF EXISTS {name}")
            self.dropped_indexes = True
        return earlier

    async def store(self, batch: list[Staged], rejected: list[Rejection], items: int) -> BatchResult:
        """Store ``batch`` and record that the input up to item ``items`` is done (one transaction).

        ``rejected`` are the documents of the same stretch of input that could not be read.
        """
        async with self.connection.transaction():
            result = await self._copy(batch)
            result.rejected = sorted(rejected + result.rejected, key=lambda r: r.number)
            await self.connection.execute(
                _ADVANCE, self.source, items, result.inserted, result.present, len(result.rejected)
            )
        return result

    async def _copy(self, batch: list[Staged]) -> BatchResult:
        try:
            async with self.connection.transaction():
                await self.connection.copy_records_to_table(
                    "rerum_objects",
                    records=[(s.record.id, s.record.body, s.record.body) for s in batch],
                    columns=["id", "body", "doc"],
                )
            return BatchResult(inserted=len(batch))
        except _REFUSED:
            return await self._one_by_one(batch)

    async def _one_by_one(self, batch: list[Staged]) -> BatchResult:
        result = BatchResult()
        for staged in batch:
            try:
                async with self.connection.transaction():
                    seq = await self.connection.fetchval(_INSERT_ONE, staged.record.id, staged.record.body)
            except asyncpg.UniqueViolationError:
                # The id conflict is absorbed by ON CONFLICT, so this is the slug's unique index.
                result.rejected.append(
                    Rejection(staged.number, staged.where, "its __rerum.slug belongs to another document")
                )
            except _REFUSED as exc:
                result.rejected.append(
                    Rejection(staged.number, staged.where, f"PostgreSQL refused it: {exc}")
                )
            else:
                if seq is None:
                    result.present += 1
                else:
                    result.inserted += 1
        return result

    async def finish(self) -> None:
        """Build the dropped indexes (once, over the whole table) and mark this import finished."""
        if self.dropped_indexes:
            await self.connection.execute("SET maintenance_work_mem = '512MB'")
            await migrate(self.connection, force=True)
            await self.connection.execute("ANALYZE rerum_objects")
            self.dropped_indexes = False
        await self.connection.execute(
            "UPDATE rerum_import SET finished_at = now() WHERE source = $1", self.source
        )


async def exported_bodies(connection: asyncpg.Connection, batch: int = 2_000) -> AsyncIterator[str]:
    """Every stored document's text, in insertion order, from one consistent snapshot."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        async for row in connection.cursor("SELECT body FROM rerum_objects ORDER BY seq", prefetch=batch):
            yield row["body"]

"""WriteTransaction: the only way to change the store.

A write runs inside one PostgreSQL transaction. Version trees are serialised by a transaction-scoped
advisory lock on the tree's root id, so every rule that reads a tree and rewrites parts of it (new
versions, delete healing, releases, the overwrite version check) sees the tree as no concurrent writer
can change it. Names (slugs and client-chosen ids) are serialised the same way.
"""

from __future__ import annotations

import asyncpg

from rerum_server import errors
from rerum_server.store import documents
from rerum_server.versioning.change import Change
from rerum_server.versioning.metadata import Document

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
_NAME_TAKEN = "SELECT EXISTS (SELECT 1 FROM rerum_objects WHERE id = $1 OR slug = $1)"
_INSERT = "INSERT INTO rerum_objects (id, body, doc) VALUES ($1, $2::text, ($2::text)::jsonb)"
_REPLACE = "UPDATE rerum_objects SET body = $2::text, doc = ($2::text)::jsonb WHERE id = $1"


class WriteTransaction:
    """Reads with locks, and applies a ``Change``; committed or rolled back by its owner."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def find(self, key: str) -> Document | None:
        return await documents.find(self.connection, key)

    async def tree(self, root: Document) -> list[Document]:
        return await documents.tree(self.connection, root)

    async def lock_trees(self, root_ids: list[str]) -> None:
        """Lock version trees in a global order, so two writers never wait on each other in a cycle."""
        for root_id in sorted(set(root_ids)):
            await self.connection.execute(_LOCK, "tree:" + root_id)

    async def claim_name(self, name: str) -> None:
        """Reserve ``name`` as an id or slug for this transaction; 409 if a document already has it."""
        await self.connection.execute(_LOCK, "name:" + name)
        if await self.connection.fetchval(_NAME_TAKEN, name):
            raise errors.Conflict(errors.DUPLICATE_ID)

    async def apply(self, change: Change) -> None:
        """Write the inserted and replaced documents of ``change``."""
        try:
            if change.inserted:
                await self.connection.executemany(
                    _INSERT, [(doc["_id"], documents.encode(doc)) for doc in change.inserted]
                )
            if change.replaced:
                await self.connection.executemany(
                    _REPLACE, [(new["_id"], documents.encode(new)) for _, new in change.replaced]
                )
        except asyncpg.UniqueViolationError as exc:
            raise errors.Conflict(errors.DUPLICATE_ID) from exc

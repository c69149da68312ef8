"""Reading and writing documents over one connection: the SQL shared by reads and transactions."""

from __future__ import annotations

import asyncpg
import orjson

from rerum_server.versioning.metadata import Document

_BY_KEY = "SELECT body FROM rerum_objects WHERE id = $1 OR slug = $1 ORDER BY seq LIMIT 1"
_TREE = "SELECT body FROM rerum_objects WHERE id = $1 OR prime = $2 ORDER BY seq"


async def find(connection: asyncpg.Connection, key: str) -> Document | None:
    """The document whose ``_id`` or slug is ``key``."""
    body = await connection.fetchval(_BY_KEY, key)
    return None if body is None else orjson.loads(body)


async def tree(connection: asyncpg.Connection, root: Document) -> list[Document]:
    """The root and every document whose ``history.prime`` names it, in insertion order."""
    rows = await connection.fetch(_TREE, root["_id"], root["@id"])
    return [orjson.loads(row["body"]) for row in rows]


def encode(doc: Document) -> str:
    return orjson.dumps(doc).decode()

"""Reading and writing documents over one connection: the SQL shared by reads and transactions."""

from __future__ import annotations

from typing import Any

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


async def matching(
    connection: asyncpg.Connection, where: str, params: tuple[Any, ...], limit: int, skip: int
) -> list[Document]:
    """Documents satisfying the compiled filter ``where`` (placeholders $1..$n), in insertion order."""
    n = len(params)
    rows = await connection.fetch(
        f"SELECT body FROM rerum_objects WHERE {where} ORDER BY seq LIMIT ${n + 1} OFFSET ${n + 2}",
        *params,
        limit,
        skip,
    )
    return [orjson.loads(row["body"]) for row in rows]


_SEARCH = """
SELECT body, ts_rank_cd(search, query) AS score
FROM rerum_objects, to_tsquery('simple', rerum_unaccent($1)) AS query
WHERE search @@ query
ORDER BY score DESC, seq
LIMIT $2 OFFSET $3
"""


async def search(
    connection: asyncpg.Connection, tsquery: str, limit: int, skip: int
) -> list[tuple[Document, float]]:
    """Documents whose text fields match ``tsquery``, best first (ties in insertion order), with scores."""
    rows = await connection.fetch(_SEARCH, tsquery, limit, skip)
    return [(orjson.loads(row["body"]), float(row["score"])) for row in rows]

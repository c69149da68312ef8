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


# MongoDB compares strings byte by byte; the "C" collation does too, whatever the database's default.
_ORDER = {False: "seq", True: 'id COLLATE "C", seq'}

# The planner cannot estimate `doc @@ ...` (documents over 1 kB get no column statistics, so it assumes
# 1% of the rows for any value): it may walk the table, or the primary key for `ORDER BY seq LIMIT`,
# where the GIN index would find a handful of rows. For statements whose conditions are selective by
# construction, these settings leave only bitmap scans (the planner still uses a sequential scan when
# no index applies). SET LOCAL: they end with the transaction.
_PREFER_BITMAP_SCANS = "SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off"
_INDEXED = " @@ "  # compiled filters test their index-served condition exactly this way


async def prefer_bitmap_scans(connection: asyncpg.Connection) -> None:
    """Make the rest of the current transaction use bitmap (index) scans rather than walk the table."""
    await connection.execute(_PREFER_BITMAP_SCANS)


async def matching(
    connection: asyncpg.Connection,
    where: str,
    params: tuple[Any, ...],
    limit: int,
    skip: int,
    *,
    order_by_id: bool = False,
    probe: int = 0,
) -> list[Document]:
    """Documents satisfying the compiled filter ``where`` (placeholders $1..$n), in insertion order
    (or in ``_id`` order, as a MongoDB ``$sort: {_id: 1}`` gives them, when ``order_by_id``).

    With ``probe`` > 0 and an index-served condition in ``where``, the GIN index first lists up to
    ``probe`` + 1 matches; when that is all of them, the page is read by position among them, else the
    matches are dense and the primary key is walked in order (see ``_probed``).
    """
    if probe > 0 and not order_by_id and _INDEXED in where:
        found = await _probed(connection, where, params, limit, skip, probe)
        if found is not None:
            return found
    n = len(params)
    rows = await connection.fetch(
        f"SELECT body FROM rerum_objects WHERE {where} "
        f"ORDER BY {_ORDER[order_by_id]} LIMIT ${n + 1} OFFSET ${n + 2}",
        *params,
        limit,
        skip,
    )
    return [orjson.loads(row["body"]) for row in rows]


async def _probed(
    connection: asyncpg.Connection, where: str, params: tuple[Any, ...], limit: int, skip: int, probe: int
) -> list[Document] | None:
    """The page, if at most ``probe`` documents match; None when more do.

    No single plan suits both cases: for a rare value, walking the primary key in order reads the whole
    table, and for a common one, collecting every match through the index and sorting reads most of it.
    """
    n = len(params)
    # The scope of SET LOCAL: a savepoint inside a transaction, rolled back (it wrote nothing) because a
    # released savepoint keeps its SET LOCAL until the outer transaction ends, and the page query below
    # must be free to walk the primary key.
    scope = connection.transaction()
    await scope.start()
    try:
        await prefer_bitmap_scans(connection)
        rows = await connection.fetch(
            f"SELECT seq FROM rerum_objects WHERE {where} LIMIT ${n + 1}", *params, probe + 1
        )
    finally:
        await scope.rollback()
    if len(rows) > probe:
        return None
    # The filter again: a document may have been replaced since the probe.
    rows = await connection.fetch(
        f"SELECT body FROM rerum_objects WHERE seq = ANY(${n + 1}::bigint[]) AND {where} "
        f"ORDER BY seq LIMIT ${n + 2} OFFSET ${n + 3}",
        *params,
        [row["seq"] for row in rows],
        limit,
        skip,
    )
    return [orjson.loads(row["body"]) for row in rows]


async def all_matching(connection: asyncpg.Connection, where: str, params: tuple[Any, ...]) -> list[Document]:
    """Every document satisfying the compiled filter ``where``, in insertion order (for joins: the
    caller bounds the result by what it looks up, not by a page)."""
    rows = await connection.fetch(f"SELECT body FROM rerum_objects WHERE {where} ORDER BY seq", *params)
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

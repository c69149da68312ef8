"""What every benchmarked app shares: the fixed payload, the table, and the per-worker pool.

Keeping these in one place means the variants differ only in the server and framework layers,
which is what the benchmark is meant to compare.
"""

from __future__ import annotations

import os

import asyncpg
import orjson

#: Environment variable through which bench/web_stack.py hands the DSN to each server worker.
DSN_ENV = "BENCH_PG_DSN"

#: Table holding the rows that ``GET /row/{id}`` reads.
TABLE = "bench_rows"

#: Row ids are ``row-000000`` .. ``row-NNNNNN``; wrk_rows.lua builds the same strings.
ROW_ID_FORMAT = "row-{:06d}"

#: One primary-key read; the document is stored as text so no JSON work happens in the app.
ROW_SQL = f"SELECT doc FROM {TABLE} WHERE id = $1"

# Connections per worker. Opened eagerly (min == max) so no connect happens while measuring;
# 4 workers x 8 stays well below PostgreSQL's default max_connections of 100.
POOL_SIZE = 8

JSON_HEADERS = [(b"content-type", b"application/json")]


def _hello_document() -> dict[str, object]:
    """Build a fixed JSON-LD-like document of roughly 1 KB."""
    return {
        "@context": "http://store.rerum.io/v1/context.json",
        "@id": "http://127.0.0.1/v1/id/000000000000000000000000",
        "@type": "Annotation",
        "motivation": "commenting",
        "body": {"type": "TextualBody", "value": "hello " * 40, "format": "text/plain"},
        "target": {
            "source": "http://example.org/iiif/book1/canvas/p1",
            "selector": {"type": "FragmentSelector", "value": "xywh=100,100,300,300"},
        },
        "__rerum": {
            "history": {"prime": "root", "previous": "", "next": []},
            "releases": {"previous": "", "next": [], "replaces": ""},
            "generatedBy": "http://store.rerum.io/v1/id/agent",
            "createdAt": "2024-01-01T00:00:00.000Z",
            "isOverwritten": "",
            "isReleased": "",
        },
        "tags": [f"tag-{i}" for i in range(20)],
    }


#: The ``GET /hello`` response body, encoded once at import so every variant sends identical bytes.
HELLO_BODY: bytes = orjson.dumps(_hello_document())


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """Skip asyncpg's default release-time reset.

    The default runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` on every
    release, a second round trip per request. These apps never change session state, so the
    reset would only add PostgreSQL load that is the same for every variant and hides the
    differences being measured.
    """


async def open_pool() -> asyncpg.Pool:
    """Create this worker's pool from the DSN in the environment."""
    return await asyncpg.create_pool(
        os.environ[DSN_ENV], min_size=POOL_SIZE, max_size=POOL_SIZE, reset=_no_reset
    )


async def fetch_doc(pool: asyncpg.Pool, row_id: str) -> str | None:
    """Return the JSON text stored for ``row_id``, or None when there is no such row."""
    return await pool.fetchval(ROW_SQL, row_id)

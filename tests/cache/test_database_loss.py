"""A PostgreSQL session terminated in the middle of a write (as by ``pg_terminate_backend``, a
restart or a failover): the write fails with the connection error the HTTP layer answers as 503
(see ``DATABASE_UNREACHABLE``), nothing is written, and reads stay fresh.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from rerum_server.store.pool import DATABASE_UNREACHABLE
from tests.cache.test_interleavings import reached
from tests.support.harness import AGENT, Harness

TERMINATE_WRITERS = """
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle in transaction'
"""


async def _terminate_the_parked_writer(h: Harness, dsn: str, point: str) -> tuple[dict[str, Any], Any]:
    doc = await h.writes.create({"n": 1}, AGENT, None)
    gate = h.probes.arm(point)
    writer = asyncio.create_task(h.writes.overwrite({"@id": doc["@id"], "n": 2}, AGENT, None))
    await reached(gate)
    admin = await asyncpg.connect(dsn)
    try:
        assert await admin.fetchval(TERMINATE_WRITERS) == 1
    finally:
        await admin.close()
    gate.resume.set()
    with pytest.raises(DATABASE_UNREACHABLE):
        await writer
    after, _ = await h.read_json(h.reads.object(doc["_id"]))
    return doc, after


def test_a_session_terminated_between_fence_and_commit_fails_the_write_and_writes_nothing(
    in_harness: Any, database_url: str
) -> None:
    async def scenario(h: Harness) -> None:
        doc, after = await _terminate_the_parked_writer(h, database_url, "write:after-fence")
        assert after["n"] == 1
        # The pool replaced the dead session: the next write goes through.
        await h.writes.overwrite({"@id": doc["@id"], "n": 3}, AGENT, None)
        again, _ = await h.read_json(h.reads.object(doc["_id"]))
        assert again["n"] == 3

    in_harness(scenario)

"""Deterministic interleavings of one read and one write, driven by pause points (no sleeps).

For every read kind: a reader is parked after its database read; a writer commits and answers; the
reader resumes and tries to fill; the next read must show the write. Then the writer is parked
between fence and COMMIT, and between COMMIT and release (whose failure must not make reads stale).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from rerum_server.cache.client import CacheClient, CacheUnavailable
from rerum_server.cache.query_stamps import query_stamps
from rerum_server.query.compile import compile_filter
from rerum_server.query.parse import parse_filter
from rerum_server.query.search import word_search
from rerum_server.writes import PATCH
from tests.support.harness import AGENT, Gate, Harness

Read = Callable[[Harness, dict[str, Any]], Awaitable[tuple[Any, str]]]


async def reached(gate: Gate) -> None:
    """Wait until a task is parked at the gate (a deadline turns a missed pause into a failure, not a hang)."""
    await asyncio.wait_for(gate.reached.wait(), timeout=20)


def _query(h: Harness, filter_doc: dict[str, Any]) -> Awaitable[tuple[Any, str]]:
    parsed = parse_filter(filter_doc)
    stamps = query_stamps(parsed)
    return h.read_json(h.reads.query(compile_filter(parsed), 100, 0, identity=filter_doc, stamps=stamps))


async def _parked_read_loses_to_write(
    h: Harness, read: Callable[[], Awaitable[tuple[Any, str]]], write: Callable[[], Awaitable[Any]]
) -> tuple[Any, str]:
    """Park a read after its database read, run ``write`` to its answer, resume; return the next read."""
    gate = h.probes.arm("read:after-database")
    reader = asyncio.create_task(read())
    await reached(gate)
    await write()
    gate.resume.set()
    await reader
    return await read()


def test_id_read_parked_after_database_cannot_store_the_old_state(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"n": 1}, AGENT, None)
        read = lambda: h.read_json(h.reads.object(doc["_id"]))  # noqa: E731
        after, status = await _parked_read_loses_to_write(
            h, read, lambda: h.writes.overwrite({"@id": doc["@id"], "n": 2}, AGENT, None)
        )
        assert after["n"] == 2
        assert status == "MISS"
        counters, _ = await h.cache.statistics()
        assert counters["refusedFills"] == 1

    in_harness(scenario)


def test_not_found_read_parked_cannot_hide_a_new_slug(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        read = lambda: h.read_json(h.reads.object("fresh-slug"))  # noqa: E731
        after, _ = await _parked_read_loses_to_write(
            h, read, lambda: h.writes.create({"n": 1}, AGENT, "fresh-slug")
        )
        assert after["n"] == 1

    in_harness(scenario)


def test_query_read_parked_cannot_hide_a_created_match(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        await h.writes.create({"target": "t-query"}, AGENT, None)
        read = lambda: _query(h, {"target": "t-query"})  # noqa: E731
        after, _ = await _parked_read_loses_to_write(
            h, read, lambda: h.writes.create({"target": "t-query"}, AGENT, None)
        )
        assert len(after) == 2

    in_harness(scenario)


def test_query_read_parked_cannot_keep_a_document_that_left_the_result(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"target": "t-leave"}, AGENT, None)
        read = lambda: _query(h, {"target": "t-leave"})  # noqa: E731
        after, _ = await _parked_read_loses_to_write(
            h, read, lambda: h.writes.overwrite({"@id": doc["@id"], "target": "elsewhere"}, AGENT, None)
        )
        assert after == []

    in_harness(scenario)


def test_search_read_parked_cannot_hide_new_text(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        read = lambda: h.read_json(h.reads.search(word_search("zanzibarite"), 100, 0))  # noqa: E731
        after, _ = await _parked_read_loses_to_write(
            h, read, lambda: h.writes.create({"body": {"value": "zanzibarite"}}, AGENT, None)
        )
        assert len(after) == 1

    in_harness(scenario)


def test_history_and_since_reads_parked_cannot_hide_a_new_version(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        root = await h.writes.create({"v": 0}, AGENT, None)
        child = await h.writes.update({"@id": root["@id"], "v": 1}, AGENT)
        since = lambda: h.read_json(h.reads.since(root["_id"]))  # noqa: E731
        after, _ = await _parked_read_loses_to_write(
            h, since, lambda: h.writes.update({"@id": child["@id"], "v": 2}, AGENT)
        )
        assert [doc["v"] for doc in after] == [1, 2]
        history = lambda: h.read_json(h.reads.history(child["_id"]))  # noqa: E731
        after, _ = await _parked_read_loses_to_write(
            h, history, lambda: h.writes.overwrite({"@id": root["@id"], "v": "root changed"}, AGENT, None)
        )
        assert [doc["v"] for doc in after] == ["root changed"]

    in_harness(scenario)


def test_reads_while_a_write_is_between_fence_and_commit_are_not_stored(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"n": 1}, AGENT, None)
        assert (await h.read_json(h.reads.object(doc["_id"])))[1] == "MISS"
        assert (await h.read_json(h.reads.object(doc["_id"])))[1] == "HIT"
        gate = h.probes.arm("write:after-fence")
        writer = asyncio.create_task(h.writes.edit(PATCH, {"@id": doc["@id"], "n": 2}, AGENT))
        await reached(gate)
        during, status = await h.read_json(h.reads.object(doc["_id"]))
        assert (during["n"], status) == (1, "MISS")  # not committed yet: the old state, from the database
        assert (await h.read_json(h.reads.object(doc["_id"])))[1] == "MISS"  # and it was not stored
        gate.resume.set()
        version = await writer
        after, _ = await h.read_json(h.reads.object(doc["_id"]))
        assert after["__rerum"]["history"]["next"] == [version["@id"]]

    in_harness(scenario)


class ReleaseFails(CacheClient):
    """A cache client whose release never reaches Redis (the fence then expires by itself)."""

    async def release(self, stamps: list[str], token: str) -> None:
        raise CacheUnavailable("release dropped by the test")


def test_failed_release_after_commit_still_answers_and_no_read_is_stale(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"n": 1}, AGENT, None)
        await h.read_json(h.reads.object(doc["_id"]))
        gate = h.probes.arm("write:after-commit")
        writer = asyncio.create_task(h.writes.overwrite({"@id": doc["@id"], "n": 2}, AGENT, None))
        await reached(gate)
        during, status = await h.read_json(h.reads.object(doc["_id"]))
        assert (during["n"], status) == (2, "MISS")  # committed: fenced stamps send reads to the database
        gate.resume.set()
        assert (await writer)["n"] == 2  # the write answers although its release failed
        for _ in range(3):
            after, status = await h.read_json(h.reads.object(doc["_id"]))
            assert (after["n"], status) == (2, "MISS")  # the fence holds until it expires
        counters, _ = await h.cache.statistics()
        assert counters["releaseFailures"] >= 1

    in_harness(scenario, cache_factory=ReleaseFails.from_url)


def test_negative_control_a_fill_without_the_generation_check_serves_the_old_state(in_harness: Any) -> None:
    """The same interleaving against a delete-after-write cache: the test must see the stale read."""
    from tests.support.naive_cache import StaleFillCacheClient

    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"n": 1}, AGENT, None)
        read = lambda: h.read_json(h.reads.object(doc["_id"]))  # noqa: E731
        after, status = await _parked_read_loses_to_write(
            h, read, lambda: h.writes.overwrite({"@id": doc["@id"], "n": 2}, AGENT, None)
        )
        assert (after["n"], status) == (1, "HIT"), "the naive cache was expected to serve the old state"

    in_harness(scenario, cache_factory=StaleFillCacheClient.from_url)

"""A worker's own copies of large answers: a hit on one is confirmed by the one round trip without its
bytes, never once a write has touched what it depends on, and the copies stay within their bounds."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest

from rerum_server.cache.client import CacheClient
from rerum_server.cache.local_copies import LocalCopies
from tests.support.harness import AGENT, Harness

LARGE = "x" * 100_000  # the size of a modest IIIF manifest
LOCAL = partial(CacheClient.from_url, local_copy_bytes=1 << 20, local_copy_min_bytes=16_384)


def test_a_hit_on_a_local_copy_is_one_round_trip_that_carries_no_body(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"manifest": LARGE}, AGENT, None)
        assert (await h.read_json(h.reads.object(doc["_id"])))[1] == "MISS"  # fills, and keeps a copy
        assert len(h.cache.local) == 1
        sent = h.count_round_trips()
        replies: list[Any] = []
        original_run = h.cache._run

        async def recording(name: str, keys: list[str], args: list[Any]) -> list[Any]:
            reply = await original_run(name, keys, args)
            replies.append(reply)
            return reply

        h.cache._run = recording  # type: ignore[method-assign]
        h.queries.clear()
        body, status = await h.read_json(h.reads.object(doc["_id"]))
        assert (body["manifest"], status) == (LARGE, "HIT")
        assert sent == ["EVALSHA"] and h.queries == []
        assert replies == [[1]]  # "your copy is valid": the 100 kB did not travel
        counters, _ = await h.cache.statistics()
        assert counters["localHits"] == 1

    in_harness(scenario, cache_factory=LOCAL)


def test_a_local_copy_is_not_confirmed_once_a_write_changed_it(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"manifest": LARGE, "n": 1}, AGENT, None)
        await h.read_json(h.reads.object(doc["_id"]))
        assert (await h.read_json(h.reads.object(doc["_id"])))[0]["n"] == 1
        await h.writes.overwrite({"@id": doc["@id"], "manifest": LARGE, "n": 2}, AGENT, None)
        body, status = await h.read_json(h.reads.object(doc["_id"]))
        assert (body["n"], status) == (2, "MISS")

    in_harness(scenario, cache_factory=LOCAL)


def test_a_local_copy_is_not_confirmed_while_a_write_is_in_flight(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"manifest": LARGE, "n": 1}, AGENT, None)
        await h.read_json(h.reads.object(doc["_id"]))
        gate = h.probes.arm("write:after-commit")
        writer = asyncio.create_task(
            h.writes.overwrite({"@id": doc["@id"], "manifest": LARGE, "n": 2}, AGENT, None)
        )
        await asyncio.wait_for(gate.reached.wait(), timeout=20)
        try:
            # committed, not yet released: the fence stands, so the copy of n=1 must not be confirmed
            body, status = await h.read_json(h.reads.object(doc["_id"]))
        finally:
            gate.resume.set()  # a failing assertion must not leave the writer parked
            await writer
        assert (body["n"], status) == (2, "MISS")
        assert (await h.read_json(h.reads.object(doc["_id"])))[0]["n"] == 2

    in_harness(scenario, cache_factory=LOCAL)


def test_small_answers_are_not_copied(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"n": 1}, AGENT, None)
        await h.read_json(h.reads.object(doc["_id"]))
        assert (await h.read_json(h.reads.object(doc["_id"])))[1] == "HIT"
        assert len(h.cache.local) == 0

    in_harness(scenario, cache_factory=LOCAL)


def test_copies_stay_within_their_byte_bound_least_recently_used_first() -> None:
    copies = LocalCopies(max_bytes=250, min_bytes=10, ttl_s=60)
    for name in "abc":
        copies.offer(name, "g", bytes(100))
    assert copies.bytes == 200 and copies.get("a") is None and copies.get("b") is not None
    copies.offer("d", "g", bytes(100))  # "c" was used least recently ("b" just now)
    assert copies.get("c") is None and copies.get("b") is not None and copies.bytes == 200
    copies.offer("small", "g", bytes(9))
    copies.offer("huge", "g", bytes(251))
    assert copies.get("small") is None and copies.get("huge") is None
    copies.offer("b", "h", bytes(50))  # a newer copy replaces the old one
    replaced = copies.get("b")
    assert replaced is not None and replaced.generations == "h" and copies.bytes == 150


@pytest.mark.parametrize("ttl_s", [0.0, -1.0])
def test_copies_expire_with_the_entry_lifetime(ttl_s: float) -> None:
    copies = LocalCopies(max_bytes=1000, min_bytes=1, ttl_s=ttl_s)
    copies.offer("a", "g", b"value")
    assert copies.get("a") is None and copies.bytes == 0

"""What the cache costs: a hit is one Redis round trip and no database query; a write adds two."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from tests.support.harness import AGENT, Harness


def test_a_hit_costs_one_redis_round_trip_and_no_database_query(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"n": 1}, AGENT, None)
        assert (await h.read_json(h.reads.object(doc["_id"])))[1] == "MISS"
        sent = h.count_round_trips()
        h.queries.clear()
        body, status = await h.read_json(h.reads.object(doc["_id"]))
        assert (body["n"], status) == (1, "HIT")
        assert sent == ["EVALSHA"]
        assert h.queries == []

    in_harness(scenario)


# What the read script may run on a hit: reads only.
_READ_ONLY = {"evalsha", "info", "time", "get", "exists", "hmget"}


def test_a_hit_writes_nothing_to_redis(in_harness: Any, redis_url: str) -> None:
    async def commands(client: aioredis.Redis) -> dict[str, int]:
        stats = await client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}

    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"n": 1}, AGENT, None)
        assert (await h.read_json(h.reads.object(doc["_id"])))[1] == "MISS"
        client = aioredis.Redis.from_url(redis_url)
        try:
            before = await commands(client)
            for _ in range(20):
                assert (await h.read_json(h.reads.object(doc["_id"])))[1] == "HIT"
            after = await commands(client)
        finally:
            await client.aclose()
        ran = {name for name, calls in after.items() if calls > before.get(name, 0)}
        assert ran - {"info"} and ran <= _READ_ONLY, ran
        counters, _ = await h.cache.statistics()
        assert counters["hits"] >= 20 and counters["id:hits"] >= 20

    in_harness(scenario)


def test_a_miss_reads_the_database_once_and_fills_in_a_second_round_trip(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"n": 1}, AGENT, None)
        other = await h.writes.create({"n": 2}, AGENT, None)
        await h.read_json(h.reads.object(other["_id"]))  # loads both scripts (a first use loads it)
        sent = h.count_round_trips()
        h.queries.clear()
        assert (await h.read_json(h.reads.object(doc["_id"])))[1] == "MISS"
        assert sent == ["EVALSHA", "EVALSHA"]
        assert len(h.queries) == 1

    in_harness(scenario)


def test_a_write_adds_two_redis_round_trips_fence_and_release(in_harness: Any) -> None:
    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"n": 1}, AGENT, None)
        sent = h.count_round_trips()
        await h.writes.overwrite({"@id": doc["@id"], "n": 2}, AGENT, None)
        assert sent == ["EVALSHA", "EVALSHA"]
        counters, _ = await h.cache.statistics()
        assert counters["fences"] == 2  # the create and the overwrite

    in_harness(scenario)


def test_concurrent_misses_of_one_key_read_the_database_once(in_harness: Any) -> None:
    """Stampede protection: one reader holds the lease and fills; the others wait for its entry."""
    import asyncio

    async def scenario(h: Harness) -> None:
        doc = await h.writes.create({"n": 1}, AGENT, None)
        h.queries.clear()
        gate = h.probes.arm("read:after-database")
        first = asyncio.create_task(h.read_json(h.reads.object(doc["_id"])))
        await asyncio.wait_for(gate.reached.wait(), timeout=20)
        others = [asyncio.create_task(h.read_json(h.reads.object(doc["_id"]))) for _ in range(10)]
        # the others are now polling the lease; let the first reader fill
        gate.resume.set()
        results = await asyncio.gather(first, *others)
        assert all(body["n"] == 1 for body, _ in results)
        database_reads = [q for q in h.queries if "FROM rerum_objects" in q]
        hits = sum(status == "HIT" for _, status in results)
        assert len(database_reads) + hits == 11
        assert len(database_reads) < 11

    in_harness(scenario)

"""Under memory pressure the cache must shrink, not refuse writes: every key it keeps, except the
namespace's birth, its statistics and the fences of writes in flight, carries a TTL, so Redis's
``volatile-lru`` policy can evict it. (Keys without a TTL cannot be evicted; once they alone exceed
``maxmemory`` every script that writes is refused with OOM, and with it every write of the API: the
short fault run's ``redis-eviction`` found the entry index and sizes in that state.)
"""

from __future__ import annotations

from typing import Any

from rerum_server.writes import PATCH
from tests.support.harness import AGENT, Harness

NEVER_EVICTED = ("born", "stats")  # tiny, and needed for correctness (born) or by operators (stats)


def test_every_key_but_birth_statistics_and_fences_can_be_evicted(in_harness: Any) -> None:
    async def scenario(h: Harness) -> list[str]:
        docs = [await h.writes.create({"n": n, "target": f"urn:canvas:{n}"}, AGENT, None) for n in range(5)]
        for doc in docs:
            await h.read_json(h.reads.object(doc["_id"]))  # miss: fills
            await h.read_json(h.reads.object(doc["_id"]))  # hit
            await h.read_json(h.reads.since(doc["_id"]))
        await h.writes.overwrite({"@id": docs[0]["@id"], "n": 10}, AGENT, None)
        await h.writes.edit(PATCH, {"@id": docs[1]["@id"], "n": 11}, AGENT)
        namespace = await h.cache.namespace()
        undying = []
        async for key in h.cache.redis.scan_iter(match=namespace.prefix + "*", count=1000):
            name = key.decode()
            if await h.cache.redis.pttl(key) < 0 and name.removeprefix(namespace.prefix) not in NEVER_EVICTED:
                undying.append(name.removeprefix(namespace.prefix))
        counters, entries = await h.cache.statistics()
        assert entries >= 5 and counters["bytes"] > 0
        return undying

    assert in_harness(scenario) == []

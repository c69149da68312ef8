"""Latency of GET /v1/api/cache/stats on a running server (the reference's took 6 s).

    python bench/stats_latency.py http://127.0.0.1:3001 [requests]

One keep-alive connection, sequential requests; prints p50/p99/max in milliseconds and the machine's
core count. The server keeps the counters in Redis, so the figure includes one Lua script.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import httpx


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:3001"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    with httpx.Client(base_url=url, timeout=10) as client:
        client.get("/v1/api/cache/stats").raise_for_status()
        timings = []
        for _ in range(count):
            started = time.perf_counter()
            client.get("/v1/api/cache/stats").raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p99 = timings[int(len(timings) * 0.99) - 1]
    print(f"{count} requests, {os.cpu_count()} cores: p50 {statistics.median(timings):.2f} ms, "
          f"p99 {p99:.2f} ms, max {timings[-1]:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Hits on large answers (IIIF manifests run to megabytes), measured side by side in one run.

``GET /v1/id/{id}`` over objects whose answers are ``--size`` bytes (100 kB by default), answered
from the cache:

- with the worker's own copy (``CACHE_LOCAL_BYTES``, the default): the read script is sent the copy's
  generations and confirms them, so the value does not travel from Valkey;
- with ``CACHE_LOCAL_BYTES=0``: the read script sends the value on every hit;
- against the bare endpoint of ``bench/cache.py`` (one ``redis.asyncio`` GET of the same bytes on the
  same stack), the floor the issue measures hits against.

    python bench/large_answers.py                   # 10 s per measurement
    python bench/large_answers.py --duration 3 --warmup 1

It reuses ``bench/cache.py``'s servers, load (wrk) and CPU accounting, and prints one table.
"""

from __future__ import annotations

import argparse
import sys

import cache
from rerum_server.auth.local_key import mint_token
from web_stack import add_shared_machine_options, machine_info

OWN_COPY = "cache hit, the worker's own copy"
SENT = "cache hit, value sent (CACHE_LOCAL_BYTES=0)"
BATCH = 20  # objects per bulkCreate: 20 x 100 kB stays under the 5 MB JSON body limit


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=100, help="large objects cycled through (100)")
    parser.add_argument("--size", type=int, default=100_000, help="bytes of each answer, about (100000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per measurement (10)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first (3)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    add_shared_machine_options(parser)
    return parser.parse_args(argv)


def _manifest(n: int, size: int) -> dict[str, object]:
    canvases = max(1, size // 200)
    return {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "type": "Manifest",
        "label": {"en": [f"Large manifest {n}"]},
        "items": [{"id": f"https://iiif.example.org/large/{n}/canvas/{c}", "type": "Canvas",
                   "label": {"none": [f"folio {c}"]}, "height": 1000, "width": 750} for c in range(canvases)],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements; return the process exit status."""
    args = parse_args(argv)
    pg = cache.start_postgres()
    cells: list[cache.Cell] = []
    try:
        db = cache.Database(pg.get_uri(), pg.get_pid())
        with cache.rerum_server("large-own", db.dsn, args.workers, cache=True) as server:
            token = mint_token(cache.SERVER_DIR, cache.AGENT, agent_claim=cache.AGENT_CLAIM, expires_in=3600)
            client = cache.Http(server.port)
            try:
                docs = [_manifest(n, args.size) for n in range(args.objects)]
                uris = [uri for at in range(0, len(docs), BATCH)
                        for uri in cache.bulk_create(client, token, docs[at : at + BATCH])]  # fmt: skip
            finally:
                client.close()
            ids = [uri.rsplit("/", 1)[1] for uri in uris]
            bodies = cache.fetch_bodies(server, ids, None)
            sizes = [len(body) for body in bodies.values()]
            print(f"{len(ids)} answers of {min(sizes):,}-{max(sizes):,} bytes", flush=True)
            path = cache.get_file(ids)

            def warm(target: cache.Server = server) -> None:
                cache.fetch_bodies(target, ids, None)
                cache.check_hits(target, ids, bodies, sample=20, seed=3)

            warm()
            cells.append(cache.Cell("get", OWN_COPY, args.threads, args.connections))
            cache.measure(cells[-1], server, lambda _n: path, token, args, db, before_each=warm)
        with cache.rerum_server("large-sent", db.dsn, args.workers, cache=True,
                                extra={"CACHE_LOCAL_BYTES": "0"}) as server:  # fmt: skip
            warm(server)
            cells.append(cache.Cell("get", SENT, args.threads, args.connections))
            cache.measure(
                cells[-1], server, lambda _n: path, token, args, db, before_each=lambda: warm(server)
            )
        with cache.bare_server(args.workers) as server:
            cache.seed_bare(ids, bodies)
            cache.check_bare(server, ids, bodies)
            cells.append(cache.Cell("get", cache.BARE, args.threads, args.connections))
            cache.measure(cells[-1], server, lambda _n: path, token, args, db)
        version = "n/a"
    finally:
        pg.cleanup()
    info = machine_info(version, cache.PACKAGES)
    print("\nMachine")
    for key, value in info.items():
        print(f"  {key:<18} {value}")
    bare = next(c for c in cells if c.variant == cache.BARE)
    print(f"\nGET /v1/id/{{id}} over {args.objects} objects of ~{args.size:,} bytes; wrk -t{args.threads} "
          f"-c{args.connections} -d{args.duration}s; ratios to the bare Redis GET of the same bytes\n")  # fmt: skip
    header = ["variant", "req/s", "p50 ms", "p99 ms", "req/s vs bare", "p50 vs bare", "app µs", "Valkey µs",
              "total µs", "local hits", "errors"]  # fmt: skip
    rows = []
    for cell in cells:
        if cell.failure is not None:
            rows.append([cell.variant, "failed: " + cell.failure] + [""] * (len(header) - 2))
            continue
        assert cell.requests_per_s and bare.requests_per_s and cell.p50_ms and bare.p50_ms
        rows.append([cell.variant, f"{cell.requests_per_s:,.0f}", f"{cell.p50_ms:.2f}", f"{cell.p99_ms:.2f}",
                     f"{cell.requests_per_s / bare.requests_per_s:.2f}x", f"{cell.p50_ms / bare.p50_ms:.2f}x",
                     f"{cell.cpu_us.get('app', 0):,.0f}", f"{cell.cpu_us.get('valkey', 0):,.0f}",
                     f"{sum(cell.cpu_us.values()):,.0f}", f"{cell.counters.get('localHits', 0):,}",
                     str(cell.errors)])  # fmt: skip
    print(cache.markdown(header, rows))
    return 1 if any(c.failure for c in cells) else 0


if __name__ == "__main__":
    sys.exit(main())

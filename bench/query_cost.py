#!/usr/bin/env python
"""Database time of large and worst-case ``/v1/api/query`` filters, the measurements behind the cost limits.

Each filter is parsed and compiled by the server's own code and answered by ``Reads.query`` (the probe of
the GIN index, then the page) over a real pool, cache off, on a table of generated documents
(``rerum_dataset.py``; built once under ``bench/.data/query-cost`` and reused). Filters the compiler
refuses print the refusal instead of a time. The statement timeout is raised (``--timeout-ms``) so that
slow filters show their real time rather than the server's default 10 s.

    python bench/query_cost.py                    # 100,000 documents
    python bench/query_cost.py --documents 10000  # a quicker table
    python bench/query_cost.py --dsn postgresql://...   # a database already holding a dataset
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rerum_dataset
from rerum_server.embedded.postgres import EmbeddedPostgres
from rerum_server.errors import RerumError
from rerum_server.query.compile import MAX_QUERY_TESTS, compile_filter
from rerum_server.query.parse import parse_filter
from rerum_server.reads import Reads
from rerum_server.store.pool import open_pool

WORK_DIR = Path(__file__).resolve().parent / ".data" / "query-cost"
ID_KEY = b'"@id"'

# name -> filter of a size; the sizes below are at or just beyond the limit, and the originals.
FILTERS: list[tuple[str, Callable[[int], dict[str, Any]], list[int]]] = [
    ("equality keys, no match", lambda n: {f"k{i}": f"v{i}" for i in range(n)}, [60, 100, 1000, 16_384]),
    ("$or of equalities", lambda n: {"$or": [{f"k{i}": f"v{i}"} for i in range(n)]}, [60, 2000]),
    ("$all of strings", lambda n: {"tags": {"$all": [f"t{i}" for i in range(n)]}}, [60, 2000]),
    ("array equality", lambda n: {"a": list(range(n))}, [40, 12_500]),
    (
        "unindexed $gt branches, every row, no match",
        lambda n: {"$or": [{"__rerum.generatedBy": {"$gt": f"zz{i}"}} for i in range(n)]},
        [1, 10, 51],
    ),
    (
        "true $ne conditions then a false one, every row",
        lambda n: {
            "$and": [{"__rerum.generatedBy": {"$ne": f"x{i}"}} for i in range(n)]
            + [{"__rerum.nothere": {"$gt": 1}}]
        },
        [1, 50],
    ),
    (
        "$nin of strings then a false condition, every row",
        lambda n: {
            "__rerum.generatedBy": {"$nin": [f"x{i}" for i in range(n)]},
            "__rerum.nothere": {"$gt": 1},
        },
        [10, 900],
    ),
    ("regex, every row", lambda n: {"__rerum.generatedBy": {"$regex": "z" * n}}, [1, 1000]),
    (
        "$or of regexes over the annotation text, every row, no match",
        lambda n: {
            "$or": [{"body.value": {"$regex": f"[a-z]*e[a-z]* [a-z]*s[a-z]*q{i}x"}} for i in range(n)]
        },
        [1, 12, 34],
    ),
    ("common equality repeated (dense)", lambda n: {"$and": [{"__rerum.alpha": True}] * n}, [40]),
    (
        "common equality, array of common values (no match)",
        lambda n: {"@context": ["http://www.w3.org/ns/anno.jsonld"] * n},
        [40],
    ),
]


async def measure(dsn: str, timeout_ms: int) -> None:
    pool = await open_pool(dsn, size=1, statement_timeout_ms=timeout_ms)
    reads = Reads(pool, rerum_dataset.ID_PREFIX)
    print(f"limit: {MAX_QUERY_TESTS} tests per document; statement timeout {timeout_ms} ms")
    try:
        for name, make, sizes in FILTERS:
            for size in sizes:
                label = f"{name} (n={size:,})"
                try:
                    compiled = compile_filter(parse_filter(make(size)))
                except RerumError as refused:
                    print(f"{label:<62} refused: {refused.message[:70]}")
                    continue
                started = time.perf_counter()
                try:
                    answer, _ = await reads.query(compiled, 100, 0, identity=label, stamps=[])
                    outcome = f"{answer.body.count(ID_KEY)} documents"
                except RerumError as failed:
                    outcome = f"{failed.status}: {failed.message[:50]}"
                print(f"{label:<62} {time.perf_counter() - started:7.2f} s  {outcome}", flush=True)
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--dsn", help="a PostgreSQL holding (or to receive) the dataset")
    parser.add_argument("--timeout-ms", type=int, default=60_000)
    args = parser.parse_args()
    embedded = None if args.dsn else EmbeddedPostgres(WORK_DIR / str(args.documents))
    dsn = args.dsn or embedded.start()
    try:
        if asyncio.run(rerum_dataset.stored_info(dsn, args.documents)) is None:
            print(f"building {args.documents:,} documents ...", flush=True)
            rerum_dataset.build(dsn, args.documents, processes=os.cpu_count() or 2)
        asyncio.run(measure(dsn, args.timeout_ms))
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()

"""Documents per second of `rerum import` on N generated RERUM documents written as mongoexport lines.

The documents are rerum_dataset.py's (annotations and IIIF lists in version trees, RERUM's key order),
written in relaxed Extended JSON with ``_id`` as ``{"$oid": ...}`` and ``createdAt`` as ``{"$date": ...}``
(what a collection written by an older RERUM holds), so every line goes through the decoder. The
import runs as the real command (`python -m rerum_server import FILE`) into an empty database of an
embedded PostgreSQL in bench/.data/import; the time is the command's, from start to exit (schema,
COPY batches, the index builds and ANALYZE included).

    python bench/import_rate.py --documents 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import asyncpg
import orjson
import psutil

from rerum_dataset import Generator, Spec
from rerum_server.embedded.postgres import EmbeddedPostgres

DATA = Path(__file__).resolve().parent / ".data" / "import"


def _as_mongo(text: str) -> bytes:
    doc = orjson.loads(text)
    doc["_id"] = {"$oid": doc["_id"]}
    created = datetime.strptime(doc["__rerum"]["createdAt"], "%Y-%m-%dT%H:%M:%S.%f")
    doc["__rerum"]["createdAt"] = {"$date": created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
    return orjson.dumps(doc) + b"\n"


def write_export(path: Path, documents: int) -> None:
    spec = Spec(documents)
    with path.open("wb") as out:
        for start, end in spec.chunks():
            for _, body, _ in Generator(spec, start).records(start, end):
                out.write(_as_mongo(body))


async def _empty(dsn: str) -> None:
    """Drop what an earlier run imported, so every run loads into an empty table."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("DROP TABLE IF EXISTS rerum_objects, rerum_import, rerum_schema")
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=1_000_000)
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    export = DATA / f"rerum-{args.documents}.json"
    if not export.exists():
        print(f"writing {args.documents:,} documents to {export} ...", flush=True)
        write_export(export, args.documents)
    postgres = EmbeddedPostgres(DATA)
    dsn = postgres.start()
    try:
        asyncio.run(_empty(dsn))
        load = os.getloadavg()
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "rerum_server", "import", str(export)],
            env={**os.environ, "DATABASE_URL": dsn, "CACHE_ENABLED": "false"},
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
    finally:
        postgres.stop()
    print(result.stderr.strip().splitlines()[-1])
    if result.returncode != 0:
        sys.exit(result.stderr)
    print(f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, "
          f"load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")  # fmt: skip
    print(f"{args.documents:,} documents in {seconds:.1f} s: {args.documents / seconds:,.0f} documents/s")


if __name__ == "__main__":
    main()

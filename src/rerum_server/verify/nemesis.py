"""The nemesis: faults injected one at a time, on a schedule, while the workload runs.

Each fault is a blocking function run in the nemesis thread: it injects, holds for ``hold_s`` seconds,
heals, and returns a line of detail. The nemesis records every fault in the run's ``Recorder`` as a
``FaultEvent`` (from just before injection to just after healing), so the report can tell what
happened during each one. Faults need different handles on the deployment (``Targets``): some only a
connection to Redis or PostgreSQL, others a Redis process, a worker's proxy or the workers' pids,
which only a local lab (``lab.py``) has.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import asyncpg
import redis

from rerum_server.verify.history import FaultEvent, Recorder, now_ns
from rerum_server.verify.proxy import FaultyProxy, Mode


class RedisProcess(Protocol):
    """A Redis server whose process the nemesis controls (the lab's)."""

    @property
    def pid(self) -> int: ...

    def kill(self) -> None: ...

    def restart(self, snapshot: bytes | None = None) -> None: ...

    def snapshot(self) -> bytes: ...


@dataclass
class Targets:
    """What the nemesis can reach. A fault whose handle is missing cannot be scheduled."""

    redis_url: str | None = None
    database_url: str | None = None
    redis: RedisProcess | None = None
    proxy: FaultyProxy | None = None
    workers: Callable[[], list[int]] | None = None  # pids of the workers that may be killed


Fault = Callable[[Targets, float, threading.Event], str]


def _client(targets: Targets, timeout_s: float = 5.0) -> redis.Redis:
    assert targets.redis_url is not None
    return redis.Redis.from_url(targets.redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)


def _wait_until_redis_answers(targets: Targets, deadline_s: float = 30.0) -> None:
    """Poll PING with a deadline (a paused or restarted Redis answers again when it is back)."""
    deadline = time.monotonic() + deadline_s
    while True:
        client = _client(targets, timeout_s=1.0)
        try:
            client.ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # poll interval of a deadline-bounded wait
        finally:
            client.close()


def redis_sigstop(targets: Targets, hold_s: float, stop: threading.Event) -> str:
    """The Redis process frozen (SIGSTOP) then thawed (SIGCONT): connections stay open, nothing answers."""
    assert targets.redis is not None
    pid = targets.redis.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        stop.wait(hold_s)
    finally:
        os.kill(pid, signal.SIGCONT)
    return f"pid {pid} stopped {hold_s:g} s"


def redis_debug_sleep(targets: Targets, hold_s: float, stop: threading.Event) -> str:
    """``DEBUG SLEEP``: the server itself blocks (needs ``enable-debug-command``)."""
    client = _client(targets, timeout_s=hold_s + 10)
    try:
        client.execute_command("DEBUG", "SLEEP", f"{hold_s:g}")
    finally:
        client.close()
    return f"slept {hold_s:g} s"


def redis_client_pause(targets: Targets, hold_s: float, stop: threading.Event) -> str:
    """``CLIENT PAUSE ... ALL``: every client's commands wait until the pause ends."""
    client = _client(targets)
    try:
        client.execute_command("CLIENT", "PAUSE", int(hold_s * 1000), "ALL")
    finally:
        client.close()
    stop.wait(hold_s)
    _wait_until_redis_answers(targets)
    return f"paused {hold_s:g} s"


def redis_restart_empty(targets: Targets, hold_s: float, stop: threading.Event) -> str:
    """Redis killed (SIGKILL) and, after ``hold_s``, started again with no data (a new run_id)."""
    assert targets.redis is not None
    targets.redis.kill()
    stop.wait(hold_s)
    targets.redis.restart()
    return f"down {hold_s:g} s, restarted empty"


def redis_restart_from_snapshot(targets: Targets, hold_s: float, stop: threading.Event) -> str:
    """A snapshot is taken, writes go on for ``hold_s``, then Redis is killed and restarted from the
    snapshot: every cache entry and generation of that moment comes back. Only the ``run_id`` scoping
    of the namespace keeps them from being served."""
    assert targets.redis is not None
    snapshot = targets.redis.snapshot()
    taken = time.monotonic()
    stop.wait(hold_s)
    targets.redis.kill()
    targets.redis.restart(snapshot)
    return f"restored a snapshot of {len(snapshot):,} bytes taken {time.monotonic() - taken:.1f} s before"


def redis_eviction(targets: Targets, hold_s: float, stop: threading.Event) -> str:
    """``maxmemory`` lowered for ``hold_s`` so that only a quarter of the data set (the keys) fits:
    far below the working set, while the server's own overhead (connections, scripts) still fits."""
    client = _client(targets)
    try:
        before = client.config_get("maxmemory")["maxmemory"]
        memory = client.info("memory")
        evicted = int(client.info("stats")["evicted_keys"])
        used, dataset = int(memory["used_memory"]), int(memory["used_memory_dataset"])
        limit = used - dataset * 3 // 4
        client.config_set("maxmemory", limit)
        try:
            stop.wait(hold_s)
        finally:
            client.config_set("maxmemory", before)
        evicted = int(client.info("stats")["evicted_keys"]) - evicted
    finally:
        client.close()
    return f"maxmemory {limit:,} bytes (data set {dataset:,} of {used:,}); {evicted:,} keys evicted"


def _proxy_fault(mode: Mode) -> Fault:
    def fault(targets: Targets, hold_s: float, stop: threading.Event) -> str:
        assert targets.proxy is not None
        targets.proxy.set_mode(mode)
        try:
            stop.wait(hold_s)
        finally:
            targets.proxy.set_mode("pass")
        return f"one worker's Redis connection: {mode} for {hold_s:g} s"

    fault.__doc__ = f"The proxy between one worker and Redis in mode {mode!r} (other workers unaffected)."
    return fault


def worker_kill(targets: Targets, hold_s: float, stop: threading.Event) -> str:
    """One worker killed with SIGKILL in the middle of the workload; waits for its replacement."""
    assert targets.workers is not None
    before = targets.workers()
    victim = random.choice(before)
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    deadline = killed + 60
    while True:
        now = targets.workers()
        if victim not in now and len(now) >= len(before):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker {victim} was not replaced within 60 s")
        stop.wait(0.05)  # poll interval of a deadline-bounded wait
    stop.wait(max(0.0, hold_s - (time.monotonic() - killed)))
    return f"killed pid {victim}; replaced in {time.monotonic() - killed:.1f} s"


_TERMINATE = """
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND application_name LIKE 'rerum/%' AND state <> 'idle'
"""


def pg_terminate(targets: Targets, hold_s: float, stop: threading.Event) -> str:
    """For ``hold_s``, every 50 ms, the server's busy PostgreSQL sessions (mid-query, mid-transaction,
    mid-COMMIT) terminated with ``pg_terminate_backend``."""
    assert targets.database_url is not None
    dsn = targets.database_url

    async def terminate() -> tuple[int, int]:
        connection = await asyncpg.connect(dsn)
        rounds = killed = 0
        try:
            end = time.monotonic() + hold_s
            while time.monotonic() < end and not stop.is_set():
                killed += await connection.fetchval(_TERMINATE)
                rounds += 1
                await asyncio.sleep(0.05)
        finally:
            await connection.close()
        return rounds, killed

    rounds, killed = asyncio.run(terminate())
    return f"{killed} busy sessions terminated in {rounds} rounds"


FAULTS: dict[str, tuple[Fault, tuple[str, ...]]] = {
    "redis-sigstop": (redis_sigstop, ("redis",)),
    "redis-debug-sleep": (redis_debug_sleep, ("redis_url",)),
    "redis-client-pause": (redis_client_pause, ("redis_url",)),
    "redis-restart-empty": (redis_restart_empty, ("redis",)),
    "redis-restart-snapshot": (redis_restart_from_snapshot, ("redis",)),
    "redis-eviction": (redis_eviction, ("redis_url",)),
    "proxy-latency": (_proxy_fault("latency"), ("proxy",)),
    "proxy-blackhole": (_proxy_fault("blackhole"), ("proxy",)),
    "proxy-reset": (_proxy_fault("reset"), ("proxy",)),
    "worker-kill": (worker_kill, ("workers",)),
    "pg-terminate": (pg_terminate, ("database_url",)),
}
"""Every fault kind, and the ``Targets`` handles it needs."""


def parse_faults(text: str) -> list[str]:
    """A comma-separated list of fault names (``all``: every kind); ValueError names an unknown one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return list(FAULTS)
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault {unknown[0]!r}; known: all, {', '.join(FAULTS)}")
    return names


def missing_handles(faults: list[str], targets: Targets) -> dict[str, list[str]]:
    """For each fault that cannot run against ``targets``, the handles it lacks."""
    missing = {}
    for name in faults:
        lacking = [handle for handle in FAULTS[name][1] if getattr(targets, handle) is None]
        if lacking:
            missing[name] = lacking
    return missing


class Nemesis:
    """Runs ``faults`` in order, cyclically, one at a time, in a thread, until told to stop.

    The schedule: ``warmup_s`` of calm, then fault, ``gap_s`` of calm, next fault ... No fault starts
    unless it and its gap end before ``deadline`` (so a run ends calm and every recovery is checked).
    """

    def __init__(
        self,
        faults: list[str],
        targets: Targets,
        recorder: Recorder,
        *,
        hold_s: float = 3.0,
        gap_s: float = 3.0,
        warmup_s: float = 4.0,
    ) -> None:
        missing = missing_handles(faults, targets)
        if missing:
            lacking = "; ".join(f"{name} needs {', '.join(handles)}" for name, handles in missing.items())
            raise ValueError(f"these faults cannot be injected here: {lacking}")
        self.faults = faults
        self.targets = targets
        self.recorder = recorder
        self.hold_s, self.gap_s, self.warmup_s = hold_s, gap_s, warmup_s
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, deadline: float) -> None:
        """Start the schedule; ``deadline`` is a ``time.monotonic()`` value."""
        self._thread = threading.Thread(target=self._schedule, args=(deadline,), name="nemesis", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the schedule (a fault in progress is healed first) and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _schedule(self, deadline: float) -> None:
        if not self.faults or self._stop.wait(self.warmup_s):
            return
        turn = 0
        while not self._stop.is_set():
            if time.monotonic() + self.hold_s + self.gap_s > deadline:
                return
            name = self.faults[turn % len(self.faults)]
            turn += 1
            start = now_ns()
            try:
                detail = FAULTS[name][0](self.targets, self.hold_s, self._stop)
            except Exception as exc:  # a fault that could not be injected or healed fails the run
                detail = f"error: {type(exc).__name__}: {exc}"
                self.errors.append(f"{name}: {detail}")
            self.recorder.fault(FaultEvent(name, start, now_ns(), detail))
            if self._stop.wait(self.gap_s):
                return

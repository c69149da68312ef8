"""The nemesis on its own: fault names, the handles each fault needs, the schedule (against a real
Redis), and how `rerum verify` refuses faults it cannot inject."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator

import pytest
import redis
from click.testing import CliRunner

from rerum_server.cli import main
from rerum_server.embedded.redis import EmbeddedRedis
from rerum_server.verify.history import Recorder
from rerum_server.verify.nemesis import FAULTS, Nemesis, Targets, missing_handles, parse_faults
from tests.support.database import DatabaseServer
from tests.support.server import RunningServer, scratch


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = EmbeddedRedis(scratch("nemesis-redis"))
    yield server.start()
    server.stop()


def test_fault_lists_name_known_faults_or_all() -> None:
    assert parse_faults("all") == list(FAULTS)
    assert parse_faults(" redis-eviction , pg-terminate ") == ["redis-eviction", "pg-terminate"]
    assert parse_faults("") == []
    with pytest.raises(ValueError, match="'redis-nap'"):
        parse_faults("redis-eviction,redis-nap")


def test_faults_that_need_the_lab_cannot_run_with_only_connections() -> None:
    targets = Targets(redis_url="redis://127.0.0.1:1/0", database_url="postgresql://x/y")
    assert missing_handles(list(FAULTS), targets) == {
        "redis-sigstop": ["redis"],
        "redis-restart-empty": ["redis"],
        "redis-restart-snapshot": ["redis"],
        "proxy-latency": ["proxy"],
        "proxy-blackhole": ["proxy"],
        "proxy-reset": ["proxy"],
        "worker-kill": ["workers"],
    }
    with pytest.raises(ValueError, match="redis-sigstop needs redis"):
        Nemesis(["redis-sigstop"], targets, Recorder())


def test_the_schedule_runs_faults_in_turn_one_at_a_time_and_heals_them(redis_url: str) -> None:
    recorder = Recorder()
    nemesis = Nemesis(
        ["redis-client-pause", "redis-eviction"],
        Targets(redis_url=redis_url),
        recorder,
        hold_s=0.3,
        gap_s=0.1,
        warmup_s=0.1,
    )
    client = redis.Redis.from_url(redis_url)
    maxmemory = client.config_get("maxmemory")
    nemesis.start(deadline=time.monotonic() + 60)
    deadline = time.monotonic() + 30
    while len(recorder.history().faults) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # poll interval of a deadline-bounded wait
    nemesis.stop()
    faults = recorder.history().faults
    assert nemesis.errors == []
    assert len(faults) >= 3
    expected = ["redis-client-pause", "redis-eviction"]
    assert [f.name for f in faults] == [expected[i % 2] for i in range(len(faults))]
    assert all(a.end_ns <= b.start_ns for a, b in itertools.pairwise(faults))  # one at a time
    assert all("keys evicted" in f.detail for f in faults if f.name == "redis-eviction")
    assert client.config_get("maxmemory") == maxmemory  # healed
    assert client.ping()
    client.close()


def test_rerum_verify_refuses_faults_it_cannot_inject() -> None:
    runner = CliRunner()
    unknown = runner.invoke(
        main, ["verify", "--url", "http://127.0.0.1:9", "--token", "t", "--faults", "nap"]
    )
    assert unknown.exit_code == 2 and "unknown fault 'nap'" in unknown.output
    lab_only = runner.invoke(
        main, ["verify", "--url", "http://127.0.0.1:9", "--token", "t", "--faults", "worker-kill"]
    )
    assert lab_only.exit_code == 2 and "worker-kill needs workers" in lab_only.output
    both = runner.invoke(main, ["verify", "--url", "http://127.0.0.1:9", "--lab"])
    assert both.exit_code == 2


def test_rerum_verify_injects_connection_faults_into_a_running_deployment(
    redis_url: str, test_database: DatabaseServer
) -> None:
    """The command an operator runs against any deployment: only URLs, no control of its processes."""
    database_url = test_database.new_database()
    server = RunningServer(
        workers=2,
        data_dir=scratch("nemesis-cli"),
        database_url=database_url,
        env={"REDIS_URL": redis_url, "CACHE_NAMESPACE": f"cli{os.getpid()}", "REDIS_TIMEOUT_MS": "500"},
    )
    try:
        args = ["verify", "--url", server.url, "--duration", "13", "--clients", "4",
                "--data-dir", str(server.data_dir), "--fault-hold", "1", "--fault-gap", "1",
                "--faults", "redis-client-pause,redis-eviction,pg-terminate",
                "--redis-url", redis_url, "--database-url", database_url]  # fmt: skip
        result = CliRunner().invoke(main, args)
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    summary = next(line for line in result.output.splitlines() if line.startswith("reads checked:"))
    assert "anomalies: 0 ·" in summary
    for fault in ("pg-terminate ×", "redis-client-pause ×", "redis-eviction ×"):
        assert fault in summary

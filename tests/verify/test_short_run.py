"""A short `rerum verify` run against a 4-worker cluster, and its negative control.

The run uses the code `rerum verify` runs (``rerum_server.verify.run.verify``): 16 clients, each request
on a new connection, a mixed workload on small pools of objects, every operation checked. Runs are
bounded by operation counts, not seconds: a slow machine makes them longer, not weaker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from rerum_server.auth.local_key import mint_token
from rerum_server.cli import main
from rerum_server.verify.checker import ANOMALY_KINDS
from rerum_server.verify.history import READ_KINDS, WRITE_KINDS, load
from rerum_server.verify.report import render
from rerum_server.verify.run import verify
from rerum_server.verify.workload import WorkloadConfig
from tests.conftest import AGENT_CLAIM, OWNER
from tests.support.database import DatabaseServer
from tests.support.reports import publish
from tests.support.server import RunningServer, scratch

pytestmark = pytest.mark.cluster


def _cluster(test_database: DatabaseServer, name: str, **options: object) -> RunningServer:
    return RunningServer(
        workers=4,
        data_dir=scratch(name),
        database_url=test_database.new_database(),
        **options,  # type: ignore[arg-type]
    )


def _config(server: RunningServer, operations: int) -> WorkloadConfig:
    token = mint_token(Path(server.data_dir).resolve(), OWNER, agent_claim=AGENT_CLAIM)
    return WorkloadConfig(urls=(server.url,), token=token, duration_s=0, operations=operations, clients=16)


@pytest.fixture(scope="module")
def cluster(test_database: DatabaseServer) -> Iterator[RunningServer]:
    running = _cluster(test_database, "verify")
    yield running
    running.stop()


def test_a_run_of_two_thousand_operations_by_sixteen_clients_finds_no_anomaly(
    cluster: RunningServer, tmp_path: Path
) -> None:
    history, report = verify(_config(cluster, 2000), save_to=tmp_path / "history.jsonl")
    publish("short run: 1 host x 4 workers, no faults", render(history, report))

    kinds = {op.kind for op in history.operations}
    assert kinds == {*READ_KINDS, *WRITE_KINDS}, kinds
    assert len(history.operations) >= 2000, len(history.operations)
    assert report.total_checked >= 1000, report.total_checked
    assert all(op.outcome == "ok" for op in history.operations), [
        op for op in history.operations if op.outcome != "ok"
    ][:3]
    assert len({op.worker for op in history.operations}) == 4  # reads and writes spread over every worker
    assert load(tmp_path / "history.jsonl") == history
    for anomaly in ANOMALY_KINDS:
        assert report.count(anomaly) == 0, (anomaly, [a.detail for a in report.examples])
    assert report.ok


def test_rerum_verify_runs_against_a_url_then_rechecks_the_saved_history(
    cluster: RunningServer, tmp_path: Path
) -> None:
    saved = tmp_path / "history.jsonl"
    runner = CliRunner()
    args = ["verify", "--url", cluster.url, "--duration", "3", "--clients", "4"]
    result = runner.invoke(main, [*args, "--data-dir", str(cluster.data_dir), "--save", str(saved)])
    assert "reads checked:" in result.stdout, result.output
    assert result.exit_code == 0 and "anomalies: 0 " in result.stdout, result.output
    again = runner.invoke(main, ["verify", "--check", str(saved)])
    assert (again.exit_code, again.stdout) == (result.exit_code, result.stdout)
    assert runner.invoke(main, ["verify"]).exit_code == 2  # neither --url nor --check
    # A run that could check nothing (here: every write refused, 401) must not pass as "0 anomalies".
    refused = runner.invoke(main, [*args[:3], "--duration", "1", "--clients", "2", "--token", "not-a-token"])
    assert refused.exit_code == 1 and "No read could be checked" in refused.output, refused.output
    assert "401" in refused.output


def test_negative_control_per_process_caches_fail_the_checker(test_database: DatabaseServer) -> None:
    """The same run against per-worker caches (the reference's design) must report stale reads."""
    naive = _cluster(
        test_database,
        "verify-naive",
        app="tests.support.naive_cache:create_app",
    )
    try:
        history, report = verify(_config(naive, 1000))
    finally:
        naive.stop()
    publish("negative control: per-worker caches", render(history, report))
    assert report.count("stale") > 0, "the checker failed to detect a cache known to be stale"

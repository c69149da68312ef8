"""The short fault run: two hosts × four workers sharing one PostgreSQL and one Redis, every fault kind
of the nemesis injected while 16 clients run the workload; and the negative control of the run_id
scoping (without it, a Redis restarted from a snapshot serves stale reads, and the checker sees them).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rerum_server.verify.checker import ANOMALY_KINDS
from rerum_server.verify.history import READ_KINDS, WRITE_KINDS, Recorder
from rerum_server.verify.lab import Lab, LabConfig
from rerum_server.verify.nemesis import FAULTS, Nemesis
from rerum_server.verify.report import bypassed, refused, render
from rerum_server.verify.run import verify
from rerum_server.verify.workload import WorkloadConfig
from tests.conftest import OWNER
from tests.support.database import DatabaseServer
from tests.support.reports import publish
from tests.support.server import PROJECT, scratch

pytestmark = pytest.mark.cluster

HOLD_S, GAP_S = 3.0, 3.0
# Every fault once, each followed by a calm gap, after a warm-up; then a calm tail.
SHORT_RUN_S = 4 + len(FAULTS) * (HOLD_S + GAP_S) + 6
# The fault schedule needs its seconds; what the run checks needs operations: a slow machine runs on,
# calm, until it has made them (about 70% of them are reads, and the run must check 1,000 reads).
SHORT_RUN_OPERATIONS = 2500


def test_every_fault_kind_on_two_hosts_leaves_no_anomaly(
    test_database: DatabaseServer, tmp_path: Path
) -> None:
    lab = Lab(scratch("lab"), LabConfig(database_url=test_database.new_database()))
    recorder = Recorder()
    with lab:
        nemesis = Nemesis(list(FAULTS), lab.targets(), recorder, hold_s=HOLD_S, gap_s=GAP_S)
        config = WorkloadConfig(
            urls=tuple(lab.urls),
            token=lab.token(OWNER),
            duration_s=SHORT_RUN_S,
            operations=SHORT_RUN_OPERATIONS,
            clients=16,
        )
        history, report = verify(
            config, recorder=recorder, nemesis=nemesis, save_to=tmp_path / "history.jsonl"
        )
        proxied = lab.proxied_pid()
    publish("short fault run: 2 hosts x 4 workers, every fault kind", render(history, report))

    assert nemesis.errors == []
    assert Counter(fault.name for fault in history.faults) == Counter(list(FAULTS))  # each kind once
    assert {op.kind for op in history.operations} == {*READ_KINDS, *WRITE_KINDS}
    assert report.total_checked >= 1000, report.total_checked
    # Two hosts × four workers answered (more pids than that: killed workers were replaced).
    assert len({op.worker for op in history.operations if op.worker}) >= 8
    # The faults were felt: writes refused while Redis could not fence, reads answered from PostgreSQL.
    assert any(refused(op) for op in history.operations)
    assert any(bypassed(op) for op in history.operations)
    # The proxied worker lost Redis on its own: it bypassed the cache during a proxy fault.
    proxy_faults = [fault for fault in history.faults if fault.name.startswith("proxy-")]
    assert proxied is not None
    assert any(
        bypassed(op) and op.worker is not None and op.worker.endswith(f"/{proxied}")
        and any(f.start_ns <= op.invoke_ns and op.complete_ns <= f.end_ns for f in proxy_faults)
        for op in history.operations
    )  # fmt: skip
    for anomaly in ANOMALY_KINDS:
        assert report.count(anomaly) == 0, (anomaly, [a.detail for a in report.examples])
    assert report.ok


def test_negative_control_without_run_id_scoping_a_restored_snapshot_serves_stale_reads(
    test_database: DatabaseServer,
) -> None:
    """The same protocol with keys that ignore which Redis server holds them: after a restart from a
    snapshot, the entries and generations of the snapshot are served again, and the checker must say so."""
    config = LabConfig(
        hosts=1,
        proxied_worker=False,
        app="tests.support.naive_cache:create_unscoped_app",
        database_url=test_database.new_database(),
        # The unscoped namespace is not marked new at start: a short fence lifetime lets it fill soon.
        env={"PYTHONPATH": str(PROJECT), "CACHE_FENCE_MS": "2000"},
    )
    recorder = Recorder()
    with Lab(scratch("lab-unscoped"), config) as lab:
        nemesis = Nemesis(["redis-restart-snapshot"], lab.targets(), recorder, hold_s=3, gap_s=2, warmup_s=4)
        workload = WorkloadConfig(
            urls=tuple(lab.urls), token=lab.token(OWNER), duration_s=30, operations=1500, clients=16
        )
        history, report = verify(workload, recorder=recorder, nemesis=nemesis)
    publish("negative control: cache keys not scoped by run_id, snapshot restores", render(history, report))
    assert nemesis.errors == []
    assert history.faults, "the snapshot fault never ran"
    assert report.count("stale") > 0, "the checker failed to detect a cache known to serve an old snapshot"

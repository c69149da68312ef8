"""Property tests: linearizable histories always check clean; one read moved to an older state is caught."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerum_server.verify.checker import check
from rerum_server.verify.history import Operation
from tests.verify.sequential import Generated, answer, linearizable_histories

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _comparable(op: Operation, observation: object) -> object:
    # query and search answers are sets: their order is not part of the guarantee
    views = getattr(observation, "views", ())
    status = getattr(observation, "status", 0)
    return (status, frozenset(views)) if op.kind in ("query", "search") else (status, tuple(views))


@SETTINGS
@given(linearizable_histories())
def test_a_linearizable_history_always_checks_clean(generated: Generated) -> None:
    report = check(generated.history)
    assert report.ok, [anomaly.detail for anomaly in report.examples]
    assert report.total_checked == sum(1 for op in generated.history.operations if op.is_read)


def _window(read: Operation, writes: list[Operation]) -> tuple[int, int]:
    """Independently of the checker: the first and last state the read may show."""
    lo = max(
        (j for j, w in enumerate(writes, 1) if w.outcome == "ok" and w.complete_ns < read.invoke_ns),
        default=0,
    )
    hi = max((j for j, w in enumerate(writes, 1) if w.invoke_ns < read.complete_ns), default=0)
    return lo, hi


@SETTINGS
@given(linearizable_histories(), st.data())
def test_one_read_moved_to_a_state_older_than_an_acknowledged_write_is_caught(
    generated: Generated, data: st.DataObject
) -> None:
    operations = generated.history.operations
    writes = {obj: sorted((op for op in operations if op.is_write and op.obj == obj), key=lambda op: op.wrote.seq)
              for obj in generated.states}  # fmt: skip
    candidates = []
    for index, op in enumerate(operations):
        if not op.is_read:
            continue
        states = generated.states[op.obj]
        lo, hi = _window(op, writes[op.obj])
        allowed = {_comparable(op, answer(states[j], op)) for j in range(lo, hi + 1)}
        for older in range(lo):
            moved = answer(states[older], op)
            if _comparable(op, moved) not in allowed:
                candidates.append((index, moved))
    if not candidates:
        return  # nothing in this history can be moved back observably; other examples cover it
    index, moved = data.draw(st.sampled_from(candidates))
    flipped = replace(operations[index], observed=moved, status=moved.status)
    history = replace(generated.history, operations=(*operations[:index], flipped, *operations[index + 1 :]))

    report = check(history)
    assert report.total_anomalies == 1, report.anomalies
    (anomaly,) = report.examples
    assert anomaly.read == flipped
    expected = ("stale",) if flipped.kind in ("id", "history", "since") else ("stale", "missing", "present")
    assert anomaly.kind in expected, anomaly.detail

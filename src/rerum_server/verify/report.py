"""The table a run prints: operations by kind, reads checked, anomalies by kind, faults, 503s, bypasses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rerum_server.verify.checker import ANOMALY_KINDS, Report
from rerum_server.verify.history import OUTCOMES, READ_KINDS, WRITE_KINDS, FaultEvent, History, Operation

NO_FAULT = "(no fault)"
_SHORT = {"non-monotonic": "non-mono"}


def refused(op: Operation) -> bool:
    """A write the server refused with 503 (the cache could not fence it: nothing was written)."""
    return op.is_write and op.status == 503


def bypassed(op: Operation) -> bool:
    """A read answered from PostgreSQL because the cache did not answer."""
    return op.is_read and (op.cache or "").upper() == "BYPASS"


def _periods(op: Operation, faults: Iterable[FaultEvent]) -> list[str]:
    """The faults an operation overlapped (``NO_FAULT`` if none)."""
    names = sorted({f.name for f in faults if f.start_ns < op.complete_ns and op.invoke_ns < f.end_ns})
    return names or [NO_FAULT]


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        cell.ljust(w) if i == 0 else cell.rjust(w)
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [_row(header, widths), *(_row(row, widths) for row in rows)]


def render(history: History, report: Report) -> str:
    """The run's table, then the first anomalies found (if any)."""
    meta = history.meta
    workers = {op.worker for op in history.operations if op.worker}
    title = (
        f"rerum verify: {meta.get('url', '?')} · {meta.get('clients', '?')} clients · "
        f"{meta.get('duration_s', '?')} s · {len(workers)} workers answered"
    )
    by_kind: Counter[tuple[str, str]] = Counter()
    for op in history.operations:
        by_kind[(op.kind, "ops")] += 1
        by_kind[(op.kind, op.outcome)] += 1
        by_kind[(op.kind, "503")] += refused(op)
        by_kind[(op.kind, "bypass")] += bypassed(op)

    header = [
        "kind",
        "ops",
        *OUTCOMES,
        "checked",
        *(_SHORT.get(a, a) for a in ANOMALY_KINDS),
        "503",
        "bypass",
    ]
    rows = []
    total = Counter[str]()
    for kind in (*READ_KINDS, *WRITE_KINDS):
        values = {
            "ops": by_kind[(kind, "ops")],
            **{outcome: by_kind[(kind, outcome)] for outcome in OUTCOMES},
            "checked": report.reads_checked.get(kind, 0),
            **{anomaly: report.anomalies.get((kind, anomaly), 0) for anomaly in ANOMALY_KINDS},
            "503": by_kind[(kind, "503")],
            "bypass": by_kind[(kind, "bypass")],
        }
        total.update(values)
        shown = [f"{values[c]:,}" if kind in READ_KINDS or c not in ("checked", *ANOMALY_KINDS) else "-"
                 for c in values]  # fmt: skip
        rows.append([kind, *shown])
    rows.append(["total", *(f"{total[c]:,}" for c in total)])
    lines = [title, *_table(header, rows)]

    injected = Counter(f.name for f in history.faults)
    faults = ", ".join(f"{name} ×{n}" for name, n in sorted(injected.items())) or "none"
    lines.append(
        f"reads checked: {report.total_checked:,} · anomalies: {report.total_anomalies:,} · faults injected: {faults}"
    )
    if history.faults:
        periods: Counter[tuple[str, str]] = Counter()
        for op in history.operations:
            for name in _periods(op, history.faults):
                periods[(name, "ops")] += 1
                periods[(name, "503")] += refused(op)
                periods[(name, "bypass")] += bypassed(op)
        names = [NO_FAULT, *sorted(injected)]
        rows = [
            [
                name,
                f"{injected.get(name, 0):,}",
                *(f"{periods[(name, c)]:,}" for c in ("ops", "503", "bypass")),
            ]
            for name in names
        ]
        lines += _table(["during", "injected", "ops", "503", "bypass"], rows)
    for anomaly in report.examples:
        lines.append(f"{anomaly.kind.upper()} (client {anomaly.read.client}): {anomaly.detail}")
    return "\n".join(lines)

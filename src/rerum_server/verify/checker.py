"""The checker: which reads of a history no correct (linearizable) server could have answered. Pure.

For a read R of object O, with O's writes w1..wm totally ordered by their markers (state j = after wj):

- ``lo`` is the last state whose write was acknowledged (``ok``) before R was invoked: R must show
  state ``lo`` or a later one. A write that failed or timed out never raises ``lo``: it is only "maybe
  applied".
- ``hi`` is the last state whose write had been invoked (whatever its outcome) before R completed:
  R may show any state up to ``hi`` (the concurrent writes explain it), never a later one.

R is fine when its answer equals the model's answer (``model.ObjectModel``) in some state of
``lo..hi``. Otherwise it is **stale** (it equals only states older than ``lo``), **phantom** (only
states after ``hi``, or none at all), or for queries and searches **missing** / **present** (a version
that matches the filter in every allowed state is absent / one that matches in none is there).
**torn**: every document is explained by some allowed state, but no one state explains them all.
Finally each client's reads of an object must not go **non-monotonic**: once it has seen state j, a
later read of its own must be consistent with j or later.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rerum_server.verify.history import READ_KINDS, History, Operation, View
from rerum_server.verify.model import ORDERED_READS, Answer, ObjectModel, observed_answer

ANOMALY_KINDS = ("stale", "phantom", "non-monotonic", "missing", "present", "torn")
_CREATING = ("create", "update", "patch")
# When one read shows several faults, the one reported is the first of these.
_PRIORITY = ("missing", "present", "stale", "phantom")


class HistoryError(ValueError):
    """The history breaks an assumption of the checker (e.g. two writes to one object overlapping)."""


@dataclass(frozen=True)
class Anomaly:
    """One read no correct server could have answered, with the writes that show it."""

    kind: str
    read: Operation
    writes: tuple[Operation, ...]
    detail: str
    earlier: Operation | None = None  # non-monotonic: the client's earlier read of a later state


@dataclass(frozen=True)
class Report:
    """The checker's verdict: counts per read kind and anomaly kind, and the first few anomalies."""

    operations: dict[tuple[str, str], int]  # (kind, outcome) → count
    reads_checked: dict[str, int]
    anomalies: dict[tuple[str, str], int] = field(default_factory=dict)  # (read kind, anomaly) → count
    examples: tuple[Anomaly, ...] = ()

    @property
    def total_anomalies(self) -> int:
        return sum(self.anomalies.values())

    @property
    def total_checked(self) -> int:
        return sum(self.reads_checked.values())

    @property
    def ok(self) -> bool:
        return self.total_anomalies == 0

    def count(self, anomaly: str, read_kind: str | None = None) -> int:
        """Anomalies of one kind, for one read kind or for all."""
        return sum(
            n for (kind, found), n in self.anomalies.items() if found == anomaly and read_kind in (None, kind)
        )


@dataclass
class _Window:
    lo: int
    hi: int
    allowed: list[int]  # the states in lo..hi the answer is consistent with


def _writes_by_object(history: History) -> dict[str, list[Operation]]:
    writes: dict[str, list[Operation]] = defaultdict(list)
    for op in history.operations:
        if op.is_write:
            if op.wrote is None:
                raise HistoryError(f"a {op.kind} of {op.obj} without a marker")
            writes[op.obj].append(op)
    for obj, ops in writes.items():
        ops.sort(key=lambda op: op.wrote.seq if op.wrote else 0)
        seqs = [op.wrote.seq for op in ops if op.wrote]
        if len(set(seqs)) != len(seqs):
            raise HistoryError(f"{obj}: two writes share a seq")
        for (seq, before), after in zip(zip(seqs, ops, strict=True), ops[1:], strict=False):
            if after.invoke_ns < before.complete_ns:
                raise HistoryError(f"{obj}: the write of seq {seq} overlaps the next write")
            if before.outcome != "ok":
                # Only the last write of an object may be "maybe applied": then its states are a chain.
                raise HistoryError(f"{obj}: a write follows a write that is {before.outcome}")
    return writes


def _created_keys(writes: Sequence[Operation], reads: Iterable[Operation]) -> list[str | None]:
    """The key each create/update/patch made; a lost answer's key is recognised in later reads."""
    keys: list[str | None] = [w.wrote.key if w.wrote and w.kind in _CREATING else None for w in writes]
    missing = {
        w.wrote.seq: i for i, w in enumerate(writes) if w.wrote and w.kind in _CREATING and not keys[i]
    }
    if not missing:
        return keys
    known = {key for key in keys if key} | {w.key for w in writes if w.key}
    targets = {w.key: i for i, w in enumerate(writes) if i in missing.values() and w.key}
    obj = writes[0].obj
    for read in reads:
        for view in read.observed.views if read.observed else ():
            if view.key in known or view.obj != obj:
                continue
            index = missing.get(view.seq) if view.seq is not None else None
            if index is not None and keys[index] is None:
                keys[index] = view.key
                known.add(view.key)
        for view in read.observed.views if read.observed else ():
            index = targets.get(view.key)
            unknown = [key for key in view.history_next if key not in known]
            if index is not None and keys[index] is None and unknown:
                keys[index] = unknown[0]
                known.add(unknown[0])
    return keys


def _window(read: Operation, model: ObjectModel) -> tuple[int, int]:
    lo = hi = 0
    for index, write in enumerate(model.writes, 1):
        if write.outcome == "ok" and write.complete_ns < read.invoke_ns:
            lo = index
        if write.invoke_ns < read.complete_ns:
            hi = index
    return lo, hi


def _describe(answer: Answer) -> str:
    status, views = answer
    shown = sorted(views, key=lambda v: v.key) if isinstance(views, frozenset) else list(views)
    return f"{status} [{', '.join(_describe_view(v) for v in shown)}]"


def _describe_view(view: View) -> str:
    if view.deleted:
        return f"{view.key} deleted"
    text = f"{view.key} seq={view.seq}"
    if view.released:
        text += " released"
    if view.history_next:
        text += f" next={','.join(view.history_next)}"
    if view.releases_next:
        text += f" releases={','.join(view.releases_next)}"
    return text


def _per_key(read: Operation, model: ObjectModel, lo: int, hi: int, observed: Answer) -> str | None:
    """The kind of fault of the worst document of the answer (None: each is explained on its own)."""
    status = observed[0]
    allowed = range(lo, hi + 1)
    everything = range(model.last + 1)
    if all(model.answer(read, j)[0] != status for j in allowed):
        older = any(model.answer(read, j)[0] == status for j in range(lo))
        return "stale" if older else "phantom"
    seen = {view.key: view for view in observed[1]}
    expected = [{view.key: view for view in model.answer(read, j)[1]} for j in everything]
    keys = set(seen).union(*(expected[j] for j in allowed))
    found: set[str] = set()
    for key in keys:
        mine = seen.get(key)
        if any(expected[j].get(key) == mine for j in allowed):
            continue
        same = [j for j in everything if expected[j].get(key) == mine]
        if any(j < lo for j in same):
            if mine is None:
                found.add("missing")
            elif all(key not in expected[j] for j in allowed):
                found.add("present")
            else:
                found.add("stale")
        elif same or any(key in expected[j] for j in everything):
            found.add("phantom")  # a state only a later write produced, or that no write produced
        else:
            found.add("present")  # a document this read should never return
    for kind in _PRIORITY:
        if kind in found:
            return kind
    return None


def _classify(
    read: Operation, model: ObjectModel, lo: int, hi: int, observed: Answer, same: Sequence[int]
) -> str:
    """The kind of an answer no allowed state explains (``same``: the states it equals)."""
    if read.kind in ORDERED_READS:
        # One object, or its history: the answer as a whole is an old state, or not.
        if any(j < lo for j in same):
            return "stale"
        if same:
            return "phantom"
    kind = _per_key(read, model, lo, hi, observed)
    if kind is None:
        # Each document is explained by some allowed state, but together they are not.
        kind = "stale" if any(j < lo for j in same) else "phantom" if same else "torn"
    if read.kind in ORDERED_READS and kind in ("missing", "present"):
        return "stale"  # for one object or its history, a version missing or left over is staleness
    return kind


def _culprit(lo: int, hi: int, same: Sequence[int]) -> int:
    """The write (1-based) that shows the anomaly best: the first acknowledged write a stale answer
    misses, or the write a phantom shows before it had begun; else the last acknowledged one."""
    older = [j for j in same if j < lo]
    if older:
        return max(older) + 1  # writes up to ``lo`` were all acknowledged before the read began
    newer = [j for j in same if j > hi]
    return min(newer) if newer else lo


def _involved(model: ObjectModel, lo: int, hi: int, culprit: int) -> tuple[Operation, ...]:
    """The culprit write, then the writes concurrent with the read."""
    chosen = [culprit] if culprit else []
    chosen += [j for j in range(lo + 1, hi + 1) if j != culprit]
    return tuple(model.writes[j - 1] for j in chosen)


def _explain(read: Operation, model: ObjectModel, lo: int, hi: int, observed: Answer, culprit: int) -> str:
    target = read.key or read.filter or read.text
    lines = [f"{read.kind} {target!r} of {model.obj} saw {_describe(observed)}"]
    if culprit:
        write = model.writes[culprit - 1]
        seq = write.wrote.seq if write.wrote else "?"
        target_key = write.key or (write.wrote.key if write.wrote else None)
        what = f"write seq {seq} ({write.kind} of {target_key})"
        if culprit > hi:
            after = (write.invoke_ns - read.complete_ns) / 1e6
            lines.append(f"it shows {what}, invoked {after:.1f} ms after the read completed")
        else:
            ago = (read.invoke_ns - write.complete_ns) / 1e6
            lines.append(f"{what} was acknowledged {ago:.1f} ms before the read began")
    for j in range(lo, hi + 1):
        lines.append(f"allowed state {j}: {_describe(model.answer(read, j))}")
    return "; ".join(lines)


def check(history: History, *, examples: int = 5) -> Report:
    """Judge every ``ok`` read of ``history``; keep the ``examples`` earliest anomalies.

    Raises ``HistoryError`` for a history whose writes to one object overlap, or continue after a
    write that was not ``ok`` (the workload never produces either).
    """
    writes = _writes_by_object(history)
    reads_of: dict[str, list[Operation]] = defaultdict(list)
    for op in history.operations:
        if op.is_read and op.outcome == "ok" and op.observed is not None:
            reads_of[op.obj].append(op)
    models = {
        obj: ObjectModel(obj, ops, _created_keys(ops, reads_of.get(obj, ()))) for obj, ops in writes.items()
    }

    operations = Counter((op.kind, op.outcome) for op in history.operations)
    checked: Counter[str] = Counter()
    anomalies: Counter[tuple[str, str]] = Counter()
    found: list[Anomaly] = []

    def report(anomaly: Anomaly) -> None:
        anomalies[(anomaly.read.kind, anomaly.kind)] += 1
        found.append(anomaly)

    windows: dict[int, _Window] = {}
    for obj, reads in reads_of.items():
        model = models.setdefault(obj, ObjectModel(obj, (), ()))
        for read in reads:
            checked[read.kind] += 1
            lo, hi = _window(read, model)
            observed = observed_answer(read)
            allowed = [j for j in range(lo, hi + 1) if model.answer(read, j) == observed]
            windows[id(read)] = _Window(lo, hi, allowed)
            if not allowed:
                same = [j for j in range(model.last + 1) if model.answer(read, j) == observed]
                kind = _classify(read, model, lo, hi, observed, same)
                culprit = _culprit(lo, hi, same)
                detail = _explain(read, model, lo, hi, observed, culprit)
                report(Anomaly(kind, read, _involved(model, lo, hi, culprit), detail))

    # Monotonic reads: a client's reads of an object, in its own order, must admit non-decreasing
    # states. Taking the smallest admissible state each time is optimal, so one pass decides it.
    by_client: dict[tuple[int, str], list[Operation]] = defaultdict(list)
    for obj, reads in reads_of.items():
        for read in reads:
            by_client[(read.client, obj)].append(read)
    for (_client, obj), reads in by_client.items():
        model = models[obj]
        floor, floor_read = 0, None
        for read in sorted(reads, key=lambda op: op.invoke_ns):
            window = windows[id(read)]
            if not window.allowed:
                continue  # already reported; it says nothing reliable about what the client saw
            later = [j for j in window.allowed if j >= floor]
            if later:
                if later[0] > floor:
                    floor, floor_read = later[0], read
                continue
            explained = _explain(read, model, window.lo, window.hi, observed_answer(read), 0)
            detail = (
                f"{explained}; but the same client had already seen state {floor} "
                f"({floor_read.kind if floor_read else '?'} invoked at {floor_read.invoke_ns if floor_read else '?'})"
            )
            involved = tuple(model.writes[j - 1] for j in range(window.allowed[-1] + 1, floor + 1))
            report(Anomaly("non-monotonic", read, involved, detail, floor_read))
            floor, floor_read = window.allowed[0], read

    return Report(
        operations=dict(operations),
        reads_checked={kind: checked[kind] for kind in READ_KINDS if checked[kind]},
        anomalies=dict(anomalies),
        examples=tuple(sorted(found, key=lambda anomaly: anomaly.read.invoke_ns)[:examples]),
    )

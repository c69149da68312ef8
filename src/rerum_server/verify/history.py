"""The history model: every operation a client ran and every fault injected, on one monotonic clock.

A history is what the checker judges, so it records facts only: when an operation was invoked and
completed (``time.monotonic_ns()`` of the one recording process), how it ended, what a write wrote
(its ``Marker``) and what a read saw (an ``Observation``: the status and a ``View`` of every document
in the answer). Histories are saved as JSON lines so a run can be re-checked later, by a newer checker.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Outcome = Literal["ok", "failed", "unknown"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "failed", "unknown")
READ_KINDS = ("id", "query", "search", "history", "since")
WRITE_KINDS = ("create", "overwrite", "update", "patch", "release", "delete")
FORMAT_VERSION = 1


def now_ns() -> int:
    """The history's one clock: every timestamp of a history comes from here, in one process."""
    return time.monotonic_ns()


@dataclass(frozen=True)
class Marker:
    """What a write wrote: its object, its place in the object's order, the key it made, its content.

    ``seq`` is unique per object and increases with every write to the object (writes to one object
    are never concurrent), so it totally orders the object's versions. ``key`` is the key a create,
    update or patch made (None when the answer never arrived). ``content`` is the document written
    (None for release and delete, which change metadata only).
    """

    obj: str
    seq: int
    key: str | None = None
    content: dict[str, Any] | None = None


@dataclass(frozen=True)
class View:
    """One document of an answer, reduced to what writes change: content marker and version links."""

    key: str
    obj: str | None
    seq: int | None
    deleted: bool = False
    released: bool = False
    history_next: tuple[str, ...] = ()
    releases_next: tuple[str, ...] = ()


@dataclass(frozen=True)
class Observation:
    """What a read saw: the HTTP status and the documents of the answer, in answer order."""

    status: int
    views: tuple[View, ...] = ()


@dataclass(frozen=True)
class Operation:
    """One request of one client, from invocation to completion.

    ``obj`` names the logical object the operation is about (every read is about one object: a key
    of it, an equality filter only its versions can match, or its unique word). ``outcome`` is ``ok``
    (the expected answer arrived), ``failed`` (an error answer, or the request was never sent) or
    ``unknown`` (no answer: timeout or broken connection). A write that is not ``ok`` may still have
    been applied, at any time after its invocation.
    """

    client: int
    kind: str
    obj: str
    invoke_ns: int
    complete_ns: int
    outcome: Outcome
    key: str | None = None
    filter: dict[str, Any] | None = None
    text: str | None = None
    status: int | None = None
    wrote: Marker | None = None
    observed: Observation | None = None
    cache: str | None = None
    worker: str | None = None
    error: str | None = None

    @property
    def is_read(self) -> bool:
        return self.kind in READ_KINDS

    @property
    def is_write(self) -> bool:
        return self.kind in WRITE_KINDS


@dataclass(frozen=True)
class FaultEvent:
    """A fault injected during the run, from its start to its end (the nemesis records them)."""

    name: str
    start_ns: int
    end_ns: int
    detail: str = ""


@dataclass(frozen=True)
class History:
    """Everything a run recorded; ``meta`` describes the run (target, clients, duration...)."""

    operations: tuple[Operation, ...]
    faults: tuple[FaultEvent, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Collects operations and faults as they complete; safe to use from a nemesis thread too."""

    def __init__(self) -> None:
        self._operations: list[Operation] = []
        self._faults: list[FaultEvent] = []
        self._lock = threading.Lock()

    def record(self, operation: Operation) -> None:
        """Append one completed operation."""
        with self._lock:
            self._operations.append(operation)

    def fault(self, event: FaultEvent) -> None:
        """Append one fault, once it has ended."""
        with self._lock:
            self._faults.append(event)

    def __len__(self) -> int:
        return len(self._operations)

    def history(self, meta: dict[str, Any] | None = None) -> History:
        """The history so far, operations in invocation order."""
        with self._lock:
            operations = sorted(self._operations, key=lambda op: (op.invoke_ns, op.complete_ns))
            faults = sorted(self._faults, key=lambda event: event.start_ns)
        return History(tuple(operations), tuple(faults), dict(meta or {}))


# ---------------------------------------------------------------------------- JSON lines


def _marker_json(marker: Marker) -> dict[str, Any]:
    return {"obj": marker.obj, "seq": marker.seq, "key": marker.key, "content": marker.content}


def _view_json(view: View) -> dict[str, Any]:
    data: dict[str, Any] = {"key": view.key, "obj": view.obj, "seq": view.seq}
    # Only the non-default facts, so that a saved history stays readable.
    if view.deleted:
        data["deleted"] = True
    if view.released:
        data["released"] = True
    if view.history_next:
        data["next"] = list(view.history_next)
    if view.releases_next:
        data["releases"] = list(view.releases_next)
    return data


def _view_from(data: dict[str, Any]) -> View:
    return View(
        key=data["key"],
        obj=data.get("obj"),
        seq=data.get("seq"),
        deleted=data.get("deleted", False),
        released=data.get("released", False),
        history_next=tuple(data.get("next", ())),
        releases_next=tuple(data.get("releases", ())),
    )


def operation_json(op: Operation) -> dict[str, Any]:
    """The JSON object of one operation (one line of a saved history)."""
    data: dict[str, Any] = {
        "type": "op",
        "client": op.client,
        "kind": op.kind,
        "obj": op.obj,
        "invoke_ns": op.invoke_ns,
        "complete_ns": op.complete_ns,
        "outcome": op.outcome,
    }
    optional = {
        "key": op.key,
        "filter": op.filter,
        "text": op.text,
        "status": op.status,
        "wrote": None if op.wrote is None else _marker_json(op.wrote),
        "observed": None
        if op.observed is None
        else {"status": op.observed.status, "views": [_view_json(v) for v in op.observed.views]},
        "cache": op.cache,
        "worker": op.worker,
        "error": op.error,
    }
    data.update({name: value for name, value in optional.items() if value is not None})
    return data


def operation_from(data: dict[str, Any]) -> Operation:
    """The operation of one saved line."""
    wrote = data.get("wrote")
    observed = data.get("observed")
    return Operation(
        client=data["client"],
        kind=data["kind"],
        obj=data["obj"],
        invoke_ns=data["invoke_ns"],
        complete_ns=data["complete_ns"],
        outcome=data["outcome"],
        key=data.get("key"),
        filter=data.get("filter"),
        text=data.get("text"),
        status=data.get("status"),
        wrote=None
        if wrote is None
        else Marker(wrote["obj"], wrote["seq"], wrote.get("key"), wrote.get("content")),
        observed=None
        if observed is None
        else Observation(observed["status"], tuple(_view_from(v) for v in observed["views"])),
        cache=data.get("cache"),
        worker=data.get("worker"),
        error=data.get("error"),
    )


def to_lines(history: History) -> Iterator[str]:
    """The history as JSON lines: a ``meta`` line, then faults, then operations."""
    yield json.dumps({"type": "meta", "version": FORMAT_VERSION, **history.meta}, sort_keys=True)
    for event in history.faults:
        yield json.dumps(
            {
                "type": "fault",
                "name": event.name,
                "start_ns": event.start_ns,
                "end_ns": event.end_ns,
                "detail": event.detail,
            }
        )
    for op in history.operations:
        yield json.dumps(operation_json(op), separators=(",", ":"))


def from_lines(lines: Iterable[str]) -> History:
    """Parse JSON lines written by ``to_lines`` (blank lines are ignored)."""
    meta: dict[str, Any] = {}
    faults: list[FaultEvent] = []
    operations: list[Operation] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        data = json.loads(line)
        kind = data.get("type")
        if kind == "meta":
            if data.get("version") != FORMAT_VERSION:
                raise ValueError(f"line {number}: history format {data.get('version')!r} is not supported")
            meta = {name: value for name, value in data.items() if name not in ("type", "version")}
        elif kind == "fault":
            faults.append(FaultEvent(data["name"], data["start_ns"], data["end_ns"], data.get("detail", "")))
        elif kind == "op":
            operations.append(operation_from(data))
        else:
            raise ValueError(f"line {number}: unknown record type {kind!r}")
    return History(tuple(operations), tuple(faults), meta)


def save(history: History, path: Path) -> None:
    """Write the history to ``path`` as JSON lines."""
    with path.open("w", encoding="utf-8") as out:
        for line in to_lines(history):
            out.write(line + "\n")


def load(path: Path) -> History:
    """Read a history saved by ``save``."""
    with path.open(encoding="utf-8") as lines:
        return from_lines(lines)

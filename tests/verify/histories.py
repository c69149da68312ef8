"""Building blocks for hand-made histories: writes, reads and views with readable defaults."""

from __future__ import annotations

from typing import Any

from rerum_server.verify.history import History, Marker, Observation, Operation, Outcome, View
from rerum_server.verify.workload import content

WORDS = {"a": "vapple", "b": "vbanana", "c": "vcherry"}
_STATUS = {"ok": 200, "failed": 503, "unknown": None}


def doc(obj: str, seq: int) -> dict[str, Any]:
    """What the workload writes for ``seq`` of ``obj``."""
    return content(obj, WORDS[obj], seq)


def write(
    kind: str,
    seq: int,
    start: int,
    end: int,
    *,
    key: str | None = None,
    new: str | None = None,
    outcome: Outcome = "ok",
    obj: str = "a",
    client: int = 0,
) -> Operation:
    """A write of ``seq`` to ``obj`` over [start, end]; ``key`` its target, ``new`` the key it made."""
    written: dict[str, Any] | None = None if kind in ("release", "delete") else doc(obj, seq)
    if kind == "patch" and written is not None:
        written = {name: value for name, value in written.items() if name != "obj"}
    status = _STATUS[outcome]
    if status == 200 and kind == "create":
        status = 201
    return Operation(
        client, kind, obj, start, end, outcome, key=key, status=status, wrote=Marker(obj, seq, new, written)
    )


def view(
    key: str,
    seq: int | None,
    *,
    obj: str = "a",
    next: tuple[str, ...] = (),
    released: bool = False,
    releases: tuple[str, ...] = (),
) -> View:
    """A document of an answer."""
    return View(key, obj, seq, released=released, history_next=next, releases_next=releases)


def deleted(key: str, obj: str = "a") -> View:
    """A deleted object's shell."""
    return View(key, obj, None, deleted=True)


def read(
    kind: str,
    start: int,
    end: int,
    *views: View,
    key: str | None = None,
    filter: dict[str, Any] | None = None,
    text: str | None = None,
    status: int = 200,
    client: int = 1,
    obj: str = "a",
    cache: str | None = None,
) -> Operation:
    """An ``ok`` read of ``obj`` over [start, end] that saw ``views`` (and ``status``)."""
    return Operation(
        client,
        kind,
        obj,
        start,
        end,
        "ok",
        key=key,
        filter=filter,
        text=text,
        status=status,
        observed=Observation(status, views),
        cache=cache,
    )


def history(*operations: Operation) -> History:
    """A history of these operations, in invocation order."""
    return History(tuple(sorted(operations, key=lambda op: op.invoke_ns)))

"""Log lines on stderr, as text or as JSON lines (``LOG_FORMAT``), and the one access line per request.

In a worker every record goes through a queue to a thread that formats and writes it: a write to a
full stderr pipe would otherwise block the event loop. An access line carries its fields as values
(``AccessLine``); the text of the line is rendered by the formatter, in that thread, not per request
on the loop. A client's ``X-Request-Id`` reaches neither the logs nor the response before
``request_id`` has cut it down to a short run of safe characters.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import logging.handlers
import os
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson

ACCESS = logging.getLogger("rerum_server.access")
REQUEST_ID_MAX = 128
# Characters a request id keeps: enough for UUIDs, ULIDs, trace ids and the like, and nothing that
# means anything to an HTTP header, a shell, a log parser or a terminal.
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._:/+=@~-]")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_writer: _Writer | None = None
# granian's ``log_dictconfig``: its loggers would write to stdout in a format of their own; they pass
# their records to ours instead (granian applies this in the parent and again in each worker).
GRANIAN_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"_granian": {"propagate": True}, "granian.access": {"propagate": True}},
}


class _Ids:
    """Generated request ids: a random prefix of this process and a counter (unique without a system
    call per request); a forked worker draws its own prefix."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_ids = _Ids()
os.register_at_fork(after_in_child=_ids.renew)


def request_id(given: str | None) -> str:
    """The request's id: the client's ``X-Request-Id`` with unsafe characters dropped and cut to 128
    characters, or a new random one when the client sent none (or nothing safe)."""
    if given:
        cleaned = _UNSAFE_ID.sub("", given[: REQUEST_ID_MAX * 4])[:REQUEST_ID_MAX]
        if cleaned:
            return cleaned
    return _ids.next()


def printable(text: str) -> str:
    """``text`` for a text log line: control characters, spaces, quotes and backslashes escaped, so a
    value can neither end the line nor pass for another field."""
    if text.isprintable() and " " not in text and '"' not in text and "\\" not in text:
        return text
    return text.encode("unicode_escape").decode("ascii").replace(" ", "\\x20").replace('"', '\\"')


@dataclass(frozen=True, slots=True)
class AccessLine:
    """One request's access line; ``str()`` is its text form (what ``logging`` calls for the message)."""

    request_id: str
    method: str
    route: str
    path: str
    status: int
    ms: float
    worker: str
    cache: str | None
    agent: str | None

    def fields(self) -> dict[str, Any]:
        """The JSON line's fields: always the same keys (null when a request has no cache outcome or
        no authenticated agent)."""
        return {
            "requestId": self.request_id,
            "method": self.method,
            "route": self.route,
            "path": self.path,
            "status": self.status,
            "ms": round(self.ms, 3),
            "worker": self.worker,
            "cache": self.cache,
            "agent": self.agent,
        }

    def __str__(self) -> str:
        return (
            f"{printable(self.method)} {self.route} {self.status} {self.ms:.3f}ms cache={self.cache or '-'} "
            f"id={self.request_id} worker={self.worker} agent={printable(self.agent or '-')} "
            f"path={printable(self.path)}"
        )


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _timestamp(record)


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message`` (+ ``exception``), and for an
    access line its fields (``AccessLine.fields``)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if isinstance(record.msg, AccessLine):
            line |= record.msg.fields()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class _KeepRecord(logging.handlers.QueueHandler):
    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # The queue stays in this process: the record needs no pickling, so it is formatted once, by the
        # writer thread (the default would format it here, on the event loop, and again there).
        return record


class _Writer:
    """A thread writing the queued records to stderr, all that are waiting in one write.

    It looks at the queue every 50 ms rather than waiting on it: a waiting thread would be woken (a
    system call, and a switch of the GIL) by every request's line.
    """

    def __init__(self, formatter: logging.Formatter) -> None:
        self.formatter = formatter
        self.records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._write_waiting()
        self._write_waiting()

    def _write_waiting(self) -> None:
        lines = []
        while True:
            try:
                record = self.records.get_nowait()
            except queue.Empty:
                break
            try:
                lines.append(self.formatter.format(record))
            except Exception:  # a bad log call must not end the writer (logging's own rule)
                lines.append(f"unformattable log record of {record.name}: {record.msg!r}")
        if lines:
            sys.stderr.write("\n".join(lines) + "\n")
            sys.stderr.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def configure(log_format: str, level: str, *, queued: bool) -> None:
    """Send every log record to stderr in ``log_format`` (``text``/``json``) from ``level`` on.

    ``queued``: through a queue and a writer thread (workers: nothing blocks the event loop).
    """
    global _writer
    formatter = JsonFormatter() if log_format == "json" else _UtcFormatter(_TEXT_FORMAT)
    drain()
    handler: logging.Handler
    if queued:
        _writer = _Writer(formatter)
        handler = _KeepRecord(_writer.records)
        # No format here uses them, and each costs every record a system call or a lookup.
        logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter)
    _replace_handlers(logging.getLogger(), handler)
    logging.getLogger().setLevel(level.upper())
    # Python's warnings would otherwise be bare lines on stderr, in no format (nor JSON).
    logging.captureWarnings(True)


def access(line: AccessLine) -> None:
    """Log one access line (the caller checked ``ACCESS.isEnabledFor(logging.INFO)``). The record is
    made directly: ``Logger.info`` would also walk the stack for a caller no line shows."""
    ACCESS.handle(logging.LogRecord(ACCESS.name, logging.INFO, "", 0, line, None, None))


def _replace_handlers(logger: logging.Logger, handler: logging.Handler) -> None:
    for old in logger.handlers[:]:
        logger.removeHandler(old)
    logger.addHandler(handler)


def drain() -> None:
    """Write what the queue still holds, end the writer thread and write directly from now on (once the
    event loop is done: the worker's last lines are not lost). A no-op without a queue."""
    global _writer
    if _writer is not None:
        _writer.stop()
        direct = logging.StreamHandler()
        direct.setFormatter(_writer.formatter)
        _replace_handlers(logging.getLogger(), direct)
        _writer = None


atexit.register(drain)

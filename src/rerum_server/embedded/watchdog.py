"""Stops the embedded PostgreSQL and Valkey when ``rerum serve`` dies without stopping them itself.

A parent killed with SIGKILL runs no ``finally``; the postmaster is not even its child (``pg_ctl``
daemonises it), so no parent-death signal can reach it. The watchdog is a small process whose stdin is
a pipe from the parent: the kernel closes the parent's end however the parent ends, so end of file
without a ``done`` line first means the parent died, and the watchdog stops what it was told to watch.

Protocol on the pipe: ``<pid> <signal>`` lines register a process and the signal that stops it
cleanly (SIGINT: PostgreSQL's fast shutdown); ``done`` means the parent stopped them itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil

MODULE = "rerum_server.embedded.watchdog"
STOP_DEADLINE_S = 30.0


class Watchdog:
    """The parent's side: ``watch()`` each process it starts (the first call starts the watchdog),
    ``stand_down()`` once it has stopped them itself."""

    def __init__(self) -> None:
        self._write_end: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def watch(self, pid: int, stop_signal: signal.Signals) -> None:
        """Stop ``pid`` with ``stop_signal`` (then SIGKILL after a deadline) if the parent dies."""
        if self._write_end is None:
            read_end, self._write_end = os.pipe()
            try:
                self._process = subprocess.Popen([sys.executable, "-m", MODULE], stdin=read_end)
            finally:
                os.close(read_end)
        os.write(self._write_end, f"{pid} {int(stop_signal)}\n".encode())

    def stand_down(self) -> None:
        """The parent stopped everything itself: end the watchdog without it touching anything."""
        if self._write_end is None or self._process is None:
            return
        try:
            os.write(self._write_end, b"done\n")
        except BrokenPipeError:
            pass  # the watchdog was killed along with its process group: nothing is left to stand down
        finally:
            os.close(self._write_end)
            self._write_end = None
        self._process.wait()


def _stop(process: psutil.Process, stop_signal: int) -> None:
    try:
        process.send_signal(stop_signal)  # psutil refuses if the pid now names another process
        process.wait(STOP_DEADLINE_S)
    except psutil.TimeoutExpired:
        process.kill()
    except psutil.NoSuchProcess:
        pass  # it ended by itself


def main() -> None:
    """The watchdog process: read registrations until ``done`` or end of file; on end of file, stop them."""
    # Ctrl-C and a closing terminal signal the whole process group; the parent handles those and stands
    # the watchdog down, which must not die before it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    watched: list[tuple[psutil.Process, int]] = []
    for line in sys.stdin.buffer:
        if line.strip() == b"done":
            return
        pid, stop_signal = (int(field) for field in line.split())
        try:
            watched.append((psutil.Process(pid), stop_signal))
        except psutil.NoSuchProcess:
            continue
    # Valkey was registered after PostgreSQL: stop in reverse order, as the parent does.
    for process, stop_signal in reversed(watched):
        _stop(process, stop_signal)


if __name__ == "__main__":
    main()

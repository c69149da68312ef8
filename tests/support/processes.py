"""Operating-system views of `rerum serve` for the tests: run it to its exit, look at its processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def serve_until_exit(
    port: int | None, data_dir: Path, env: dict[str, str], deadline_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run `rerum serve` (on ``port``, else on $PORT) expecting it to refuse to start; fail the test if it
    serves instead."""
    command = [sys.executable, "-m", "rerum_server", "serve", "--workers", "1", "--data-dir", str(data_dir)]
    if port is not None:
        command += ["--port", str(port)]
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = process.communicate(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        process.terminate()
        stdout, stderr = process.communicate(timeout=30)
        pytest.fail(f"rerum serve started instead of refusing to:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a refused start-up prints on stderr (failing on a traceback or log lines)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def poll(check: Callable[[], bool], deadline_s: float = 60.0) -> None:
    """Repeat ``check`` until it holds, failing after the deadline (a bounded wait, not a sleep)."""
    end = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < end, "the condition did not hold before the deadline"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody has reaped yet has stopped: it holds no port, answers nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def children_of(pid: int) -> list[int]:
    """The pids of the processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except OSError:
                continue  # the process ended meanwhile
    return found


def port_free(port: int) -> bool:
    """Whether nothing accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0

"""`rerum serve` as an operator's process: it refuses a taken address and bad configuration in one line
before starting anything, and nothing it started outlives it when it is killed."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
from pathlib import Path

import pytest

from rerum_server.embedded.redis import free_port
from tests.support.database import DatabaseServer
from tests.support.processes import alive, children_of, one_line, poll, port_free, serve_until_exit
from tests.support.server import RunningServer, scratch

pytestmark = pytest.mark.cluster


def test_a_second_server_on_a_taken_port_refuses_to_start(
    server: RunningServer, test_database: DatabaseServer, tmp_path: Path
) -> None:
    refused = serve_until_exit(
        server.port, tmp_path / "second", {"DATABASE_URL": test_database.new_database()}
    )
    line = one_line(refused)
    assert f"127.0.0.1:{server.port}" in line and "in use" in line, line


def test_a_port_held_by_another_program_gives_one_line(test_database: DatabaseServer, tmp_path: Path) -> None:
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        # A real database: without the claim, start-up gets as far as granian's bind and its traceback.
        env = {"DATABASE_URL": test_database.new_database()}
        refused = serve_until_exit(port, tmp_path / "data", env)
    line = one_line(refused)
    assert f"127.0.0.1:{port}" in line and "in use" in line, line


def test_a_bad_variable_stops_start_up_before_postgresql_starts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    refused = serve_until_exit(
        free_port(), data_dir, {"DATABASE_URL": "", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "abc"}
    )
    assert one_line(refused) == "Error: REDIS_PORT has value 'abc'; expected an integer."
    assert not (data_dir / "postgres").exists(), "the embedded PostgreSQL was started first"


def test_a_bad_port_variable_is_one_line_too(tmp_path: Path) -> None:
    refused = serve_until_exit(None, tmp_path / "data", {"PORT": "abc"})
    assert one_line(refused) == "Error: PORT has value 'abc'; expected an integer."


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signals are a Linux facility")
def test_children_die_with_a_killed_parent() -> None:
    data_dir = scratch("orphans")
    shutil.rmtree(data_dir, ignore_errors=True)
    # Embedded PostgreSQL and embedded Valkey: everything `rerum serve` can start.
    server = RunningServer(workers=2, data_dir=data_dir, database_url="", env={"REDIS_URL": ""})
    parent = server.process.pid
    postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    children = children_of(parent)
    workers = server.worker_pids()
    assert len(workers) == 2 and len(children) > len(workers), "no embedded Valkey among the children"
    started = [*children, postmaster]
    try:
        os.kill(parent, signal.SIGKILL)
        server.process.wait()
        poll(lambda: port_free(server.port) and not any(alive(pid) for pid in started))
    finally:
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGINT if pid == postmaster else signal.SIGKILL)
        poll(lambda: not alive(postmaster))
        shutil.rmtree(data_dir, ignore_errors=True)

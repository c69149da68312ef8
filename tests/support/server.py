"""Start and stop real `rerum serve` clusters and an embedded PostgreSQL for the tests."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import redis

from rerum_server.auth.local_key import mint_token
from rerum_server.embedded.redis import free_port, mark_new
from rerum_server.serve import APP
from rerum_server.settings import ENVIRONMENT
from rerum_server.verify.lab import Host

PROJECT = Path(__file__).resolve().parents[2]
TEST_DATA = PROJECT / ".test-data"


def process_name() -> str:
    """A name unique to this pytest process: concurrent runs (xdist workers, or two developers' runs)
    never share a directory or a database."""
    return f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}"


def scratch(name: str) -> Path:
    """The directory ``name`` in this process's own part of ``.test-data``, which the session removes
    when it ends (``tests/conftest.py``) and no other process touches."""
    return TEST_DATA / process_name() / name


def new_namespace(redis_url: str) -> str:
    """A cache namespace no server has used on ``redis_url``, marked as new there (see ``mark_new``),
    so that caching in it starts at once instead of after one fence lifetime."""
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(redis_url)
    try:
        mark_new(client, namespace)
    finally:
        client.close()
    return namespace


def external_redis_env() -> dict[str, str]:
    """With RERUM_TEST_REDIS_URL set, servers share that Redis, each in a namespace of its own."""
    url = os.environ.get("RERUM_TEST_REDIS_URL")
    if not url:
        return {}
    return {"REDIS_URL": url, "CACHE_NAMESPACE": new_namespace(url)}


class RunningServer(Host):
    """`rerum serve` (the real command line) on 127.0.0.1 and a free port, for black-box tests; ``stop()``
    ends it. ``app`` runs ``serve()`` with a test-only workers' factory instead (e.g. a broken cache)."""

    def __init__(
        self,
        *,
        workers: int,
        data_dir: Path,
        database_url: str,
        env: dict[str, str] | None = None,
        app: str | None = None,
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {
            **external_redis_env(),
            "DATABASE_URL": database_url,
            # A loaded 2-core CI machine can stall Redis replies for longer than the production
            # default; a timeout here would (correctly) refuse writes and make tests flaky.
            "REDIS_TIMEOUT_MS": "2000",
            "RERUM_ID_PREFIX": f"http://127.0.0.1:{port}/v1/id/",
            "RERUM_PREFIX": f"http://127.0.0.1:{port}/v1/",
            # A test-only workers' factory lives under tests/: the workers must be able to import it.
            **({"PYTHONPATH": str(PROJECT)} if app is not None else {}),
            **(env or {}),
        }
        self._cli = app is None
        super().__init__("server", port=port, workers=workers, data_dir=data_dir, env=env, app=app or APP)
        self.wait_ready()

    def bearer(self, agent: str) -> dict[str, str]:
        """The Authorization header of a token for ``agent`` that this server accepts (its local key)."""
        signed = mint_token(self.data_dir.resolve(), agent, agent_claim=ENVIRONMENT["RERUM_AGENT_CLAIM"][0])
        return {"Authorization": "Bearer " + signed}

    def command(self, app: str) -> list[str]:
        if not self._cli:
            return super().command(app)
        return [sys.executable, "-m", "rerum_server", "serve", "--workers", str(self.workers),
                "--port", str(self.port), "--data-dir", str(self.data_dir)]  # fmt: skip

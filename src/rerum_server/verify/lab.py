"""A deployment on one machine that the nemesis can fully control: the verification lab.

Two (or more) ``rerum serve`` clusters on different ports, as if on different hosts, sharing one
PostgreSQL and one Redis; the Redis is a process of the lab (so it can be frozen, killed, restarted
empty or from a snapshot) and one worker of the last host reaches it through a ``FaultyProxy`` (so it
alone can lose Redis while the other workers keep theirs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from rerum_server.auth.local_key import mint_token
from rerum_server.embedded.postgres import EmbeddedPostgres
from rerum_server.embedded.redis import EmbeddedRedis, free_port
from rerum_server.embedded.watchdog import MODULE as WATCHDOG
from rerum_server.serve import APP
from rerum_server.settings import ENVIRONMENT
from rerum_server.verify.nemesis import Targets
from rerum_server.verify.proxy import FaultyProxy

PROXIED_APP = "rerum_server.verify.lab_app:create_app"


class LabRedis(EmbeddedRedis):
    """The embedded Valkey, plus what the nemesis does to it: kill, restart (empty or from a snapshot)."""

    DUMP = "dump.rdb"

    def command(self, port: int) -> list[str]:
        # DEBUG SLEEP is a fault of the schedule; the dump file is where a restored snapshot is loaded from.
        return [*super().command(port), "--enable-debug-command", "local", "--dbfilename", self.DUMP]

    def kill(self) -> None:
        """SIGKILL: no shutdown save, connections dropped."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self, snapshot: bytes | None = None) -> None:
        """Start again on the same port: empty, or with the data of ``snapshot``. Either way the server
        has a new run_id; the namespace is not marked new (writes fenced before may still commit)."""
        dump = self.directory / self.DUMP
        if snapshot is None:
            dump.unlink(missing_ok=True)
        else:
            dump.write_bytes(snapshot)
        self.mark_new = False
        self.start()

    def snapshot(self) -> bytes:
        """An RDB snapshot of the data set as it is now."""
        client = redis.Redis(port=self.port, socket_timeout=10)
        try:
            client.save()
        finally:
            client.close()
        dump = self.directory / self.DUMP
        data = dump.read_bytes()
        dump.unlink()
        return data


def _workers_of(pid: int) -> list[int]:
    """The pids of the worker processes of the server process ``pid``: its children running the same
    executable (an embedded Valkey it started is a child too, but not a worker), except its watchdog.
    Read from /proc."""
    try:
        executable = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return []
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # The command name (field 2) may hold spaces and parentheses: fields follow the last ')'.
            if (
                int(stat.rsplit(")", 1)[1].split()[1]) == pid
                and os.readlink(entry / "exe") == executable
                and WATCHDOG.encode() not in (entry / "cmdline").read_bytes()
            ):
                workers.append(int(entry.name))
        except OSError:
            continue  # the process ended meanwhile
    return workers


LAUNCH = (
    "import logging, sys; from pathlib import Path; from rerum_server.serve import serve; "
    "logging.basicConfig(level=logging.INFO); "
    "serve('127.0.0.1', int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), app=sys.argv[4])"
)


class Host:
    """One ``rerum serve`` cluster on 127.0.0.1 and a port of its own (one "host" of the lab)."""

    def __init__(
        self, name: str, *, port: int, workers: int, data_dir: Path, env: dict[str, str], app: str = APP
    ) -> None:
        self.name = name
        self.workers = workers
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir / f"{name}.log"
        self.env = {**os.environ, **env, "PORT": str(self.port)}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(app), env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def command(self, app: str) -> list[str]:
        """The server's command line: ``serve()`` with the workers' factory ``app``."""
        return [sys.executable, "-c", LAUNCH, str(self.port), str(self.workers), str(self.data_dir), app]

    def wait_ready(self, deadline_s: float = 60.0) -> None:
        """Poll the API map until the host answers with all its workers started."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            try:
                answered = self.ready(httpx.get(self.url + "/v1/api", timeout=1).status_code)
                if answered and len(self.worker_pids()) >= self.workers:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # poll interval of a deadline-bounded wait
        self.stop()
        raise RuntimeError(f"{self.name} did not start within {deadline_s:g} s:\n{self.log()}")

    def ready(self, status: int) -> bool:
        """Whether the API map's status says the host is up."""
        return status == 200

    def worker_pids(self) -> list[int]:
        return _workers_of(self.process.pid)

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
        return self.process.returncode


@dataclass
class LabConfig:
    """The lab's shape. ``app`` replaces the workers' factory (negative controls use broken caches)."""

    hosts: int = 2
    workers: int = 4
    proxied_worker: bool = True
    app: str = APP
    database_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)


class Lab:
    """Start with ``start()`` (or ``with``); ``urls``, ``token()`` and ``targets()`` then describe it."""

    def __init__(self, directory: Path, config: LabConfig | None = None) -> None:
        self.directory = directory.resolve()
        self.config = config or LabConfig()
        self.postgres: EmbeddedPostgres | None = None
        self.redis = LabRedis(self.directory)
        self.proxy: FaultyProxy | None = None
        self.hosts: list[Host] = []
        self.database_url = self.config.database_url or ""
        self.redis_url = ""
        self._claim = self.directory / "proxied-worker"

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def urls(self) -> list[str]:
        return [host.url for host in self.hosts]

    def start(self) -> None:
        """PostgreSQL (embedded unless configured), Redis, the proxy, then the hosts, one after another
        (the first creates the local signing key every host shares)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            if not self.database_url:
                self.postgres = EmbeddedPostgres(self.directory)
                self.database_url = self.postgres.start()
            # A dump left by an interrupted run would be loaded at start; the lab starts empty.
            (self.redis.directory / LabRedis.DUMP).unlink(missing_ok=True)
            self.redis_url = redis_url = self.redis.start()
            env = {
                "DATABASE_URL": self.database_url,
                "REDIS_URL": redis_url,
                # Timeouts shorter than the faults' hold, so faults are felt (503s, bypasses); longer
                # than the stalls of a busy 2-core machine, so calm periods stay calm.
                "REDIS_TIMEOUT_MS": "1000",
                # The workload's answers are small: keep a worker's own copy of every one, so the
                # faults also test hits confirmed without their bytes.
                "CACHE_LOCAL_MIN_BYTES": "1",
                **self.config.env,
            }
            ports = [free_port() for _ in range(self.config.hosts)]
            # One deployment behind one name: every host mints the same ids.
            env |= {"RERUM_ID_PREFIX": f"http://127.0.0.1:{ports[0]}/v1/id/",
                    "RERUM_PREFIX": f"http://127.0.0.1:{ports[0]}/v1/"}  # fmt: skip
            self._claim.unlink(missing_ok=True)
            for number, port in enumerate(ports):
                host_env, app = dict(env), self.config.app
                if number == len(ports) - 1 and self.config.proxied_worker:
                    assert self.redis.port is not None
                    self.proxy = FaultyProxy("127.0.0.1", self.redis.port)
                    self.proxy.start()
                    host_env |= {"RERUM_LAB_PROXY_URL": self.proxy.url(), "RERUM_LAB_CLAIM": str(self._claim)}
                    app = PROXIED_APP
                host = Host(f"host-{chr(ord('a') + number)}", port=port, workers=self.config.workers,
                            data_dir=self.directory, env=host_env, app=app)  # fmt: skip
                self.hosts.append(host)
                host.wait_ready()
        except BaseException:
            self.stop()
            raise

    def proxied_pid(self) -> int | None:
        """The pid of the worker that reaches Redis through the proxy (None before it claimed it)."""
        try:
            return int(self._claim.read_text() or 0) or None
        except (OSError, ValueError):
            return None

    def killable_workers(self) -> list[int]:
        """Every host's workers but the proxied one (its successor would not be proxied)."""
        proxied = self.proxied_pid()
        return [pid for host in self.hosts for pid in host.worker_pids() if pid != proxied]

    def targets(self) -> Targets:
        return Targets(
            redis_url=self.redis_url,
            database_url=self.database_url,
            redis=self.redis,
            proxy=self.proxy,
            workers=self.killable_workers,
        )

    def token(self, agent: str) -> str:
        """A bearer token for ``agent``, signed by the key every host of the lab uses."""
        return mint_token(self.directory, agent, agent_claim=ENVIRONMENT["RERUM_AGENT_CLAIM"][0])

    def logs(self) -> str:
        """Every host's log, for a failure report."""
        return "\n".join(f"===== {host.name}\n{host.log()}" for host in self.hosts)

    def stop(self) -> None:
        for host in self.hosts:
            host.stop()
        if self.proxy is not None:
            self.proxy.stop()
        self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()

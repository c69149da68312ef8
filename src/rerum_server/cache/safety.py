"""Checks made on every new connection to the cache Redis, before any command of ours runs on it.

- a replica is refused: replication is asynchronous, so a replica may not have the latest generations;
- an ``allkeys-*`` eviction policy is refused (unless allowed): it may evict fences and generations;
- persistence is reported: a restart from a snapshot brings old entries back (the ``run_id``
  namespace makes them unreachable, but the memory is wasted).
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

log = logging.getLogger("rerum_server.cache")
_warned_persistence = False


def parse_info(raw: bytes | str) -> dict[str, str]:
    """``INFO`` text → {field: value}."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    fields = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            name, _, value = line.partition(":")
            fields[name] = value
    return fields


def problems(info: dict[str, str], *, allow_allkeys: bool) -> list[str]:
    """Why this server must not be our cache (empty when it may be)."""
    found = []
    if info.get("role", "master") != "master":
        found.append("it is a replica (role:" + info.get("role", "?") + "); point REDIS_URL at the primary")
    policy = info.get("maxmemory_policy", "")
    if policy.startswith("allkeys-") and not allow_allkeys:
        found.append(
            f"its maxmemory-policy is {policy}, which may evict fences; use volatile-lru (or "
            "CACHE_ALLOW_ALLKEYS_EVICTION=true to accept the risk)"
        )
    return found


def connect_check(*, allow_allkeys: bool) -> Any:
    """A redis-py ``redis_connect_func`` running the checks on each new connection."""

    async def on_connect(connection: AbstractConnection) -> None:
        global _warned_persistence
        await connection.on_connect()
        await connection.send_command("INFO")
        info = parse_info(await connection.read_response())
        found = problems(info, allow_allkeys=allow_allkeys)
        if found:
            await connection.disconnect()
            raise RedisConnectionError("refusing this Redis as the cache: " + "; ".join(found))
        if not _warned_persistence and (info.get("aof_enabled") == "1" or await _saves(connection)):
            _warned_persistence = True
            log.warning("the cache Redis persists data (RDB or AOF); run it without persistence")

    return on_connect


async def _saves(connection: AbstractConnection) -> bool:
    try:
        await connection.send_command("CONFIG", "GET", "save")
        reply = await connection.read_response()
    except ResponseError:
        return False  # CONFIG is disabled on many managed services
    return len(reply) >= 2 and bool(reply[1])

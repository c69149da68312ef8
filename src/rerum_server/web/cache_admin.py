"""Cache management: cluster-wide statistics, health, and an admin-only clear."""

from __future__ import annotations

import time
from typing import Any

import orjson

from rerum_server import errors
from rerum_server.answers import JSON
from rerum_server.cache.client import CacheUnavailable
from rerum_server.cache.preflight import credentials_refused
from rerum_server.cache.safety import problems
from rerum_server.cache.stamps import ALL
from rerum_server.web.context import Services
from rerum_server.web.http import Request, Response

ENDPOINTS = ("id", "history", "since", "query", "search", "phrase", "gog")
ADMIN_ROLE = "rerum-admin"
_COUNTERS = (
    "hits",
    "localHits",
    "misses",
    "bypasses",
    "fills",
    "refusedFills",
    "fences",
    "releaseFailures",
    "writesRefused",
)


def _json(body: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(body), [("Cache-Control", "no-store")], JSON)


async def stats(request: Request, services: Services) -> Response:
    """``GET /v1/api/cache/stats``: counters summed over every worker and host (they live in Redis)."""
    settings = services.settings
    body: dict[str, Any] = {
        "enabled": services.cache is not None,
        "ttl": settings.cache_ttl_ms,
        "ttls": dict(settings.cache_entry_ttls_ms),
    }
    if services.cache is None:
        return _json(body | dict.fromkeys(_COUNTERS, 0) | {"hitRate": 0.0, "entries": 0, "bytes": 0})
    try:
        counters, entries = await services.cache.statistics()
    except CacheUnavailable as exc:
        raise errors.ServiceUnavailable(f"The cache cannot be reached: {exc}") from exc
    hits, misses = counters.get("hits", 0), counters.get("misses", 0)
    body |= {name: counters.get(name, 0) for name in _COUNTERS}
    body |= {
        "hitRate": round(hits / (hits + misses), 4) if hits + misses else 0.0,
        "entries": entries,
        "bytes": counters.get("bytes", 0),
        "endpoints": {
            name: {"hits": counters.get(f"{name}:hits", 0), "misses": counters.get(f"{name}:misses", 0)}
            for name in ENDPOINTS
        },
    }
    return _json(body)


async def health(request: Request, services: Services) -> Response:
    """``GET /v1/api/cache/health``: 200 when the cache Redis answers and is safe to use, else 503.

    ``status`` says which: ``ok``, ``unsafe`` (see ``problems``), ``credentials-refused`` (it answered and
    refused our password or ACL user: a configuration error) or ``unreachable`` (it did not answer).
    ``young``/``youngForMs``: the namespace is new and still refuses fills (every read is a MISS) for
    that long.
    """
    if services.cache is None:
        return _json({"enabled": False, "healthy": True, "status": "ok"})
    started = time.perf_counter()
    try:
        info = {name: str(value) for name, value in (await services.cache.redis.info()).items()}
    except Exception as exc:  # any failure to talk to Redis is "unhealthy", never a 500
        refused = credentials_refused(exc)
        body = {"enabled": True, "healthy": False, "reachable": refused,
                "status": "credentials-refused" if refused else "unreachable", "error": str(exc)}  # fmt: skip
        return _json(body, 503)
    latency_ms = (time.perf_counter() - started) * 1000
    try:
        young_ms: int | None = await services.cache.young_for_ms()
    except CacheUnavailable:
        young_ms = None
    found = problems(info, allow_allkeys=services.settings.allow_allkeys_eviction)
    body = {
        "enabled": True,
        "healthy": not found,
        "status": "unsafe" if found else "ok",
        "reachable": True,
        "latencyMs": round(latency_ms, 3),
        "version": info.get("valkey_version") or info.get("redis_version"),
        "runId": info.get("run_id"),
        "role": info.get("role"),
        "evictionPolicy": info.get("maxmemory_policy"),
        "persistence": info.get("aof_enabled") == "1" or await _snapshots(services),
        "maxmemory": int(info.get("maxmemory", 0)),
        "usedMemory": int(info.get("used_memory", 0)),
        "problems": found,
        # A new namespace (first start against this Redis, or Redis restarted) refuses fills for one
        # fence lifetime: every read is a MISS meanwhile, and this says why and for how long.
        "young": bool(young_ms),
        "youngForMs": young_ms,
    }
    if young_ms:
        body["note"] = (
            "The cache namespace is new (this Redis started or restarted recently): fills are refused for "
            f"one fence lifetime (CACHE_FENCE_MS), so reads are MISS for another {young_ms} ms."
        )
    return _json(body, 200 if not found else 503)


async def _snapshots(services: Services) -> bool | None:
    """Whether RDB snapshots are configured (None when CONFIG is disabled, as on many managed services)."""
    assert services.cache is not None
    try:
        config = await services.cache.redis.config_get("save")
    except Exception:  # CONFIG refused or Redis gone: unknown, not an error of the health check
        return None
    return bool(config.get("save"))


async def clear(request: Request, services: Services) -> Response:
    """``POST /v1/api/cache/clear``: admins only; O(1) (every entry depends on the stamp "all")."""
    agent, claims = await services.verifier.verify(request.header("authorization"))
    settings = services.settings
    roles = claims.get(settings.admin_role_claim) if settings.admin_role_claim else None
    is_admin = agent in settings.admin_agents or (
        (isinstance(roles, list) and ADMIN_ROLE in roles) or roles == ADMIN_ROLE
    )
    if not is_admin:
        raise errors.Forbidden("Only an administrator of this server may clear the cache.")
    if services.cache is None:
        return _json({"cleared": 0, "bytes": 0, "enabled": False})
    try:
        cleared, size = await services.cache.clear(ALL)
    except CacheUnavailable as exc:
        raise errors.ServiceUnavailable(f"The cache cannot be reached: {exc}") from exc
    return _json({"cleared": cleared, "bytes": size, "enabled": True})

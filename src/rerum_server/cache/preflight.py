"""``rerum serve``'s one look at an external cache Redis before any worker starts.

Credentials the Redis refuses are a configuration error that nothing at run time can repair: the cache
would fail closed forever (reads BYPASS, writes 503), so start-up stops with one line saying so.
A Redis that does not answer may be restarting or not up yet; the cache fails closed until it answers
and recovers by itself, so start-up goes on after one warning line.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, AuthenticationWrongNumberOfArgsError, NoPermissionError

from rerum_server.cache.keys import Namespace, young_for_ms

log = logging.getLogger("rerum_server.cache")

# The workers run INFO and Lua scripts: an ACL user refused either has a cache that can never work.
_PROBE_SCRIPT = "return 1"


class CredentialsRefused(Exception):
    """The cache Redis refused our credentials; the message is one line naming the server."""


def credentials_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is Redis refusing who we are (WRONGPASS, NOAUTH) or what we may do (ACL NOPERM)."""
    return isinstance(exc, AuthenticationError | AuthenticationWrongNumberOfArgsError | NoPermissionError)


def where(url: str) -> str:
    """The server of a Redis URL without its credentials (passwords never reach a log line)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname}:{parts.port or 6379}"


async def check(url: str, *, timeout_s: float) -> None:
    """Connect once, authenticate and run what the workers run; raise ``CredentialsRefused`` if refused,
    log one warning if the server does not answer."""
    client = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        await client.info("server")
        await client.eval(_PROBE_SCRIPT, 0)
    except Exception as exc:
        if credentials_refused(exc):
            raise CredentialsRefused(
                f"The cache Redis at {where(url)} refused our credentials ({exc}); check REDIS_USERNAME and "
                "REDIS_PASSWORD (or the credentials in REDIS_URL) and its ACL."
            ) from None
        log.warning(
            "cannot reach the cache Redis at %s (%s); starting anyway: reads go to PostgreSQL and writes "
            "answer 503 until it answers",
            where(url),
            str(exc) or type(exc).__name__,
        )
    finally:
        await client.aclose()


async def describe(url: str, *, embedded: bool, namespace: str, fence_ms: int, timeout_s: float) -> str:
    """One phrase for the start-up log: which Redis (embedded or external, where, TLS, version) and
    whether its cache namespace is still young (fills refused for its first fence lifetime)."""
    kind = "embedded" if embedded else "external"
    tls = "on" if url.startswith("rediss://") else "off"
    client = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        info = await client.info("server")
        pipe = client.pipeline(transaction=False)
        pipe.get(Namespace(str(info["run_id"]), namespace).born)
        pipe.time()
        born, (seconds, micros) = await pipe.execute()
    except Exception as exc:  # the workers will keep trying; the log says what it could not learn
        return f"{kind} Redis at {where(url)}, TLS {tls}, not answering ({str(exc) or type(exc).__name__})"
    finally:
        await client.aclose()
    server = (
        f"Valkey {info['valkey_version']}" if "valkey_version" in info else f"Redis {info['redis_version']}"
    )
    left = young_for_ms(born, seconds * 1000 + micros // 1000, fence_ms)
    youth = (
        f"the cache is young: fills are refused for {left / 1000:.1f} s more (a new namespace waits one "
        "fence lifetime, CACHE_FENCE_MS, for writes fenced before a restart), so reads are MISS until then"
        if left
        else "the cache is ready"
    )
    return f"{kind} {server} at {where(url)}, TLS {tls}, namespace {namespace}; {youth}"

"""The floor under a cache hit: one ``redis.asyncio`` GET per request, behind granian, raw ASGI.

bench/cache.py compares ``rerum serve``'s cache hits with this: same server (granian, started with
the same options ``rerum serve`` uses), same worker count, same Redis (the bundled Valkey, started
with the same configuration), same wire bytes in the body. What a hit costs beyond this floor is the
application (routing, the read script instead of a plain GET, decoding the entry, the headers).

``GET /v1/id/{key}`` answers the value stored under ``key`` (404 when there is none), so the load
script that drives the real server drives this one unchanged.

Run as a program (``python -m stack_apps.redis_get --port P --workers N --data-dir D``) it starts the
Valkey, prints nothing, and serves until SIGTERM/SIGINT, then stops the Valkey, as ``rerum serve``
does. The bench seeds the values afterwards through ``REDIS_URL_FILE``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

#: Where the launcher writes the Valkey URL, so the bench can seed it (the workers read the env).
REDIS_URL_FILE = "redis-url"
_URL_ENV = "BENCH_REDIS_URL"

_PREFIX = "/v1/id/"
_NOT_FOUND = b'{"error":"not found"}'
_JSON = (b"content-type", b"application/json; charset=utf-8")

_redis: aioredis.Redis | None = None


async def _respond(send: Any, status: int, body: bytes) -> None:
    """Send one complete response with the content type and length the real server sends too."""
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    """Open the worker's Redis connection pool at start-up, close it at shutdown."""
    global _redis
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # No hidden retries and no health-check PINGs, as the server's cache client: one
            # request, one command.
            _redis = aioredis.Redis.from_url(os.environ[_URL_ENV], health_check_interval=0)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _redis is not None:
                await _redis.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Serve ``GET /v1/id/{key}`` from one Redis GET."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    if scope["method"] != "GET" or not path.startswith(_PREFIX) or _redis is None:
        await _respond(send, 404, _NOT_FOUND)
        return
    value = await _redis.get(path[len(_PREFIX) :])
    if value is None:
        await _respond(send, 404, _NOT_FOUND)
    else:
        await _respond(send, 200, value)


def main() -> None:
    """Start the bundled Valkey as ``rerum serve`` does, then granian with ``rerum serve``'s options."""
    from granian import Granian
    from granian.constants import Interfaces

    from rerum_server.embedded.redis import EmbeddedRedis

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()

    args.data_dir.mkdir(parents=True, exist_ok=True)
    (args.data_dir / REDIS_URL_FILE).unlink(missing_ok=True)
    # Same binary, flags and maxmemory as the Valkey `rerum serve` starts (rerum_server.embedded.redis).
    valkey = EmbeddedRedis(args.data_dir, maxmemory=os.environ.get("RERUM_REDIS_MAXMEMORY", "256mb"))
    try:
        os.environ[_URL_ENV] = valkey.start()
        (args.data_dir / REDIS_URL_FILE).write_text(os.environ[_URL_ENV])
        # The options of rerum_server.serve.serve, so the HTTP layer is the one the real server has.
        Granian(
            "stack_apps.redis_get:app",
            address=args.host,
            port=args.port,
            interface=Interfaces.ASGI,
            workers=args.workers,
            respawn_failed_workers=True,
            respawn_interval=0.5,
            log_access=False,
        ).serve()
    finally:
        valkey.stop()


if __name__ == "__main__":
    main()

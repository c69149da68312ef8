"""A bare ASGI callable: no framework, only ``scope``/``receive``/``send``."""

from __future__ import annotations

from typing import Any

import asyncpg

from stack_apps.common import HELLO_BODY, JSON_HEADERS, fetch_doc, open_pool

Scope = dict[str, Any]
Message = dict[str, Any]

_pool: asyncpg.Pool | None = None

_ROW_PREFIX = "/row/"
_NOT_FOUND = b'{"error":"not found"}'


async def _respond(send: Any, status: int, body: bytes) -> None:
    """Send one complete JSON response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            # Frameworks add content-length; do the same so the wire bytes match across variants.
            "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    """Open the worker's pool at startup and close it at shutdown."""
    global _pool
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                _pool = await open_pool()
            except Exception as exc:  # report to the server so it exits instead of serving 500s
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _pool is not None:
                await _pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Any, send: Any) -> None:
    """Serve ``GET /hello`` and ``GET /row/{id}``."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    if scope["method"] != "GET":
        await _respond(send, 405, b'{"error":"method not allowed"}')
    elif path == "/hello":
        await _respond(send, 200, HELLO_BODY)
    elif path.startswith(_ROW_PREFIX) and _pool is not None:
        doc = await fetch_doc(_pool, path[len(_ROW_PREFIX) :])
        if doc is None:
            await _respond(send, 404, _NOT_FOUND)
        else:
            await _respond(send, 200, doc.encode())
    else:
        await _respond(send, 404, _NOT_FOUND)

"""The two benchmark endpoints as a Litestar application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, MediaType, Request, Response, get

from stack_apps.common import HELLO_BODY, fetch_doc, open_pool


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Hold one asyncpg pool per worker for the life of the process."""
    app.state.pool = await open_pool()
    try:
        yield
    finally:
        await app.state.pool.close()


@get("/hello", media_type=MediaType.JSON)
async def hello() -> Response[bytes]:
    """Return the fixed ~1 KB document (already encoded, so Litestar sends the bytes as they are)."""
    return Response(HELLO_BODY, media_type=MediaType.JSON)


@get("/row/{row_id:str}", media_type=MediaType.JSON)
async def row(request: Request, row_id: str) -> Response[str]:
    """Return one row's JSON text by primary key."""
    doc = await fetch_doc(request.app.state.pool, row_id)
    if doc is None:
        return Response('{"error":"not found"}', status_code=404, media_type=MediaType.JSON)
    return Response(doc, media_type=MediaType.JSON)


# No OpenAPI: the schema routes are unused here and only cost start-up time.
app = Litestar(route_handlers=[hello, row], lifespan=[lifespan], openapi_config=None)

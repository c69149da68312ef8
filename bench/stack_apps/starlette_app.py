"""The two benchmark endpoints as a Starlette application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stack_apps.common import HELLO_BODY, fetch_doc, open_pool

_JSON = "application/json"


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Hold one asyncpg pool per worker for the life of the process."""
    app.state.pool = await open_pool()
    try:
        yield
    finally:
        await app.state.pool.close()


async def hello(request: Request) -> Response:
    """Return the fixed ~1 KB document."""
    return Response(HELLO_BODY, media_type=_JSON)


async def row(request: Request) -> Response:
    """Return one row's JSON text by primary key."""
    doc = await fetch_doc(request.app.state.pool, request.path_params["row_id"])
    if doc is None:
        return Response(b'{"error":"not found"}', status_code=404, media_type=_JSON)
    return Response(doc, media_type=_JSON)


app = Starlette(routes=[Route("/hello", hello), Route("/row/{row_id}", row)], lifespan=lifespan)

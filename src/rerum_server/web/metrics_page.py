"""``GET /metrics``: every worker's metrics and the cluster-wide cache counters, for Prometheus."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST

from rerum_server import errors
from rerum_server.cache.client import CacheUnavailable
from rerum_server.metrics import exposition
from rerum_server.web.context import Services
from rerum_server.web.http import Request, Response


async def metrics(request: Request, services: Services) -> Response:
    """The Prometheus text format; 404 with ``METRICS_ENABLED=false``. Unauthenticated: an operator who
    does not want it public blocks ``/metrics`` at the proxy (README)."""
    if not services.settings.metrics_enabled:
        raise errors.PageNotFound()
    counters: dict[str, int] | None = None
    entries = 0
    if services.cache is not None:
        try:
            counters, entries = await services.cache.statistics()
        except CacheUnavailable:
            counters = None  # exposed as rerum_cache_up 0; the workers' own metrics still answer
    # Reading every worker's files is blocking I/O: off the event loop.
    body = await asyncio.to_thread(exposition, counters, entries)
    return Response(200, body, [("Cache-Control", "no-store")], CONTENT_TYPE_LATEST)

"""The Prometheus metrics of one worker, and the exposition of every worker's (``GET /metrics``).

Under ``rerum serve`` the workers are separate processes: prometheus_client's multiprocess mode keeps
each worker's values in files of ``PROMETHEUS_MULTIPROC_DIR`` (created by the parent, see
``multiproc``), and a scrape answered by any worker sums them all. That mode is chosen when
prometheus_client is first imported, so nothing the parent imports before it sets the directory may
import this module (``tests/unit/test_observability.py``).

Per request the cost is one dictionary lookup for the label children (made once per label set, the
set is bounded: route templates, never raw paths) and three writes to the worker's own file.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

_pid = os.getpid()


def _process_id() -> int:
    return _pid


def _forked() -> None:
    global _pid
    _pid = os.getpid()


# prometheus_client asks os.getpid() on every write to a multiprocess file (to notice a fork): a real
# system call (glibc caches no pid), several per request, costly on virtual machines. The pid is kept
# here instead and renewed in a forked child.
os.register_at_fork(after_in_child=_forked)
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_id)

# What a worker records is registered nowhere: in multiprocess mode the files are the registry, and
# without it (an app run in-process by tests) this registry is scraped instead.
_LOCAL = CollectorRegistry()
_REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SCRIPT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_LABELS = ("route", "method", "status", "cache")
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
UNMATCHED = "(unmatched)"

REQUESTS = Counter(
    "rerum_http_requests", "HTTP requests answered", _LABELS, registry=_LOCAL
)  # fmt: skip
LATENCY = Histogram(
    "rerum_http_request_duration_seconds",
    "Time from the request's arrival to its answer handed to the server",
    _LABELS,
    buckets=_REQUEST_BUCKETS,
    registry=_LOCAL,
)
SCRIPT_LATENCY = Histogram(
    "rerum_cache_script_duration_seconds",
    "Round trip of one cache Lua script (read, fill, fence, release, ...), failures included",
    ("script",),
    buckets=_SCRIPT_BUCKETS,
    registry=_LOCAL,
)
CACHE_EVENTS = {
    name: Counter(f"rerum_cache_{metric}", help_, registry=_LOCAL)
    for name, metric, help_ in (
        ("fences", "fences", "Writes that fenced their stamps before COMMIT"),
        ("writesRefused", "writes_refused", "Writes answered 503 because Redis could not be fenced"),
        ("bypasses", "bypasses", "Reads answered from PostgreSQL because Redis did not answer"),
        ("fills", "fills", "Cache entries stored after a miss"),
        ("refusedFills", "refused_fills", "Fills refused because a write intervened (normal under writes)"),
        ("releaseFailures", "release_failures", "Releases that did not reach Redis (the fence expires)"),
    )
}
REDIS_CONNECTS = Counter(
    "rerum_redis_connects",
    "Connections opened to the cache Redis; growth after start-up means Redis dropped or timed out some",
    registry=_LOCAL,
)
REDIS_FAILURES = Counter(
    "rerum_redis_failures", "Cache calls Redis did not answer (each starts the backoff)", registry=_LOCAL
)
POOL = Gauge(
    "rerum_db_pool_connections",
    "PostgreSQL connections of the workers' pools: in use, idle, and the most allowed",
    ("state",),
    multiprocess_mode="livesum",
    registry=_LOCAL,
)
_POOL_IN_USE, _POOL_IDLE, _POOL_MAX = POOL.labels("in_use"), POOL.labels("idle"), POOL.labels("max")
_SCRIPTS = {name: SCRIPT_LATENCY.labels(name) for name in
            ("read", "fill", "fence", "release", "stats", "clear", "count")}  # fmt: skip
# The cluster-wide counters of the cache statistics (cache/lua/count.lua), by their field there.
_CLUSTER = (
    ("hits", "hits"),
    ("misses", "misses"),
    ("bypasses", "bypasses"),
    ("fills", "fills"),
    ("refusedFills", "refused_fills"),
    ("fences", "fences"),
    ("releaseFailures", "release_failures"),
    ("writesRefused", "writes_refused"),
)


_templates: dict[re.Pattern[str], str] = {}


def route_label(pattern: re.Pattern[str]) -> str:
    """The template of the route matching ``pattern`` (``^/v1/id/(?P<id>...)/?$`` → ``/v1/id/{id}``):
    a label that names the endpoint, never an id."""
    template = _templates.get(pattern)
    if template is None:
        path = pattern.pattern.removeprefix("^").removesuffix("/?$")
        template = _templates[pattern] = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path) or "/"
    return template


class Recorder:
    """Records one worker's requests; ``request`` is on every request's path, so it stays small."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}

    def request(self, route: str, method: str, status: int, cache: str | None, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (route, method, status, cache or "none")
        children = self._children.get(key)
        if children is None:
            label_method = method if method in _METHODS else "other"
            labels = (route, label_method, str(status), key[3])
            children = self._children[key] = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)


def count_event(field: str, amount: int = 1) -> None:
    """Count a cache event of the statistics (``count_later``'s fields) in this worker's metrics."""
    counter = CACHE_EVENTS.get(field)
    if counter is not None:
        counter.inc(amount)


def timed_script(name: str, started: float) -> None:
    """Record the round trip of the script ``name`` that started at ``started`` (``perf_counter``)."""
    _SCRIPTS[name].observe(time.perf_counter() - started)


def counting_connects(connect: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """Wrap a redis-py ``redis_connect_func`` so that every new connection is counted."""

    async def on_connect(connection: Any) -> None:
        REDIS_CONNECTS.inc()
        await connect(connection)

    return on_connect


def sample_pool(pool: asyncpg.Pool, size: int) -> None:
    """Set this worker's pool gauges from ``pool`` now."""
    idle = pool.get_idle_size()
    _POOL_IN_USE.set(pool.get_size() - idle)
    _POOL_IDLE.set(idle)
    _POOL_MAX.set(size)


async def sample_pool_forever(pool: asyncpg.Pool, size: int, interval_s: float = 1.0) -> None:
    """Keep the pool gauges current (each worker its own; a scrape sums the live workers')."""
    while True:
        sample_pool(pool, size)
        await asyncio.sleep(interval_s)


class _Cluster:
    """The cluster-wide cache counters read from Redis for one scrape (not per worker: not summed)."""

    def __init__(self, counters: dict[str, int] | None, entries: int) -> None:
        self.counters = counters
        self.entries = entries

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("rerum_cache_up", "Whether this scrape could read the cache statistics")
        up.add_metric([], 0 if self.counters is None else 1)
        yield up
        if self.counters is None:
            return
        for field, name in _CLUSTER:
            family = CounterMetricFamily(
                f"rerum_cache_cluster_{name}",
                f"Cluster-wide {field} of the cache statistics (every worker, every host; a new Redis "
                "namespace starts again from 0)",
            )
            family.add_metric([], self.counters.get(field, 0))
            yield family
        entries = GaugeMetricFamily("rerum_cache_cluster_entries", "Live cache entries")
        entries.add_metric([], self.entries)
        yield entries
        size = GaugeMetricFamily("rerum_cache_cluster_bytes", "Size of the live cache entries")
        size.add_metric([], self.counters.get("bytes", 0))
        yield size


def exposition(counters: dict[str, int] | None, entries: int) -> bytes:
    """Every worker's metrics and the cluster-wide counters in the Prometheus text format (reads the
    multiprocess files: call it off the event loop)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
    else:
        registry = CollectorRegistry()
        registry.register(_Local())
    registry.register(_Cluster(counters, entries))
    return generate_latest(registry)


class _Local:
    def collect(self) -> Iterator[Metric]:
        yield from _LOCAL.collect()

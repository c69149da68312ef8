"""The race test against a 4-worker cluster with the shared cache, and its negative control."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rerum_server.auth.local_key import mint_token
from tests.conftest import AGENT_CLAIM, OWNER
from tests.support.database import DatabaseServer
from tests.support.race import Api, run_pairs
from tests.support.reports import publish
from tests.support.server import RunningServer, scratch

pytestmark = pytest.mark.cluster


def _cluster(test_database: DatabaseServer, name: str, **options: object) -> RunningServer:
    return RunningServer(
        workers=4,
        data_dir=scratch(name),
        database_url=test_database.new_database(),
        **options,  # type: ignore[arg-type]
    )


def _api(server: RunningServer) -> Api:
    return Api(server.url, mint_token(Path(server.data_dir).resolve(), OWNER, agent_claim=AGENT_CLAIM))


@pytest.fixture(scope="module")
def cluster(test_database: DatabaseServer) -> Iterator[RunningServer]:
    running = _cluster(test_database, "race")
    yield running
    running.stop()


def test_a_thousand_write_then_read_pairs_on_new_connections_are_never_stale(cluster: RunningServer) -> None:
    tally = run_pairs(_api(cluster), rounds=60)
    total = sum(tally.pairs.values())
    assert total >= 1000, total
    assert sum(tally.stale.values()) == 0, (tally.stale, tally.examples)
    # most reads landed on another worker than the write they follow
    assert tally.other_worker > total / 2, (tally.other_worker, total)
    publish(
        "race test", f"{total} pairs, 0 stale, {tally.other_worker} reads on another worker than the write"
    )


def test_negative_control_per_process_caches_serve_stale_reads(test_database: DatabaseServer) -> None:
    """The same test against the reference's design (a cache per worker) must report stale reads."""
    naive = _cluster(
        test_database,
        "race-naive",
        app="tests.support.naive_cache:create_app",
    )
    try:
        tally = run_pairs(_api(naive), rounds=10)
    finally:
        naive.stop()
    stale = sum(tally.stale.values())
    assert stale > 0, "the race test failed to detect a cache known to be stale"
    pairs = sum(tally.pairs.values())
    publish(
        "race test, negative control",
        f"per-process caches: {stale} stale of {pairs} pairs: {dict(tally.stale)}",
    )


def test_stats_from_any_worker_sum_the_requests_of_all_workers(cluster: RunningServer) -> None:
    """Workers ship their counts at least once a second (a hit writes nothing to Redis): within that
    bound, every worker's stats answer sums the reads of all of them."""
    api = _api(cluster)
    doc = api.create({"stats": 1})
    key = doc["@id"].rsplit("/", 1)[1]

    def counted() -> tuple[int, int]:
        stats = api.call("GET", "/v1/api/cache/stats").body
        return stats["hits"] + stats["misses"] + stats["bypasses"], stats["endpoints"]["id"]["hits"]

    before = _settled(counted)
    workers = {api.get(key).worker for _ in range(60)}
    assert len(workers) >= 2
    deadline = time.monotonic() + 30
    while True:
        answers = [api.call("GET", "/v1/api/cache/stats") for _ in range(12)]
        sums = {(reply.body["hits"] + reply.body["misses"] + reply.body["bypasses"] - before[0],
                 reply.body["endpoints"]["id"]["hits"] - before[1]) for reply in answers}  # fmt: skip
        if len({reply.worker for reply in answers}) >= 2 and len(sums) == 1 and next(iter(sums))[0] == 60:
            break
        assert time.monotonic() < deadline, sums
    assert next(iter(sums))[1] >= 59


def _settled(read: Callable[[], tuple[int, int]]) -> tuple[int, int]:
    """The counters once no worker has counts left to ship: unchanged over two flush intervals."""
    deadline = time.monotonic() + 30
    last, since = read(), time.monotonic()
    while time.monotonic() - since < 2.5:
        assert time.monotonic() < deadline, "the statistics never settled"
        current = read()
        if current != last:
            last, since = current, time.monotonic()
    return last

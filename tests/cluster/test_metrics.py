"""`GET /metrics` of a live `rerum serve --workers 4`, parsed with prometheus_client's own parser: every
worker's counts add up in any worker's answer, and survive the worker that made them."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rerum_server.auth.local_key import mint_token
from tests.conftest import AGENT_CLAIM, OWNER
from tests.support.database import DatabaseServer
from tests.support.processes import alive, poll
from tests.support.race import Api, Reply
from tests.support.server import RunningServer, scratch

pytestmark = pytest.mark.cluster

Key = tuple[str, str, str, str]  # route, method, status, cache
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
WORKERS = 4
DOCS = Path(__file__).resolve().parents[2] / "docs"
POOL_SIZE = 3


@pytest.fixture(scope="module")
def cluster(test_database: DatabaseServer) -> Iterator[RunningServer]:
    running = RunningServer(
        workers=WORKERS,
        data_dir=scratch("metrics"),
        database_url=test_database.new_database(),
        env={"RERUM_DB_POOL_SIZE": str(POOL_SIZE)},
    )
    yield running
    running.stop()


def _api(server: RunningServer) -> Api:
    return Api(server.url, mint_token(Path(server.data_dir).resolve(), OWNER, agent_claim=AGENT_CLAIM))


def scrape(server: RunningServer) -> Samples:
    """One scrape, as {(sample name, sorted labels): value}."""
    reply = httpx.get(server.url + "/metrics", timeout=30)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def requests_by_key(samples: Samples, name: str = "rerum_http_requests_total") -> Counter[Key]:
    counts: Counter[Key] = Counter()
    for (sample, labels), value in samples.items():
        if sample == name:
            found = dict(labels)
            counts[(found["route"], found["method"], found["status"], found["cache"])] += int(value)
    return counts


def _key(route: str, method: str, reply: Reply) -> Key:
    return (route, method, str(reply.status), reply.headers.get("x-cache", "none"))


def _delta(after: Counter[Key], before: Counter[Key], keys: Iterator[Key] | set[Key]) -> Counter[Key]:
    return Counter({key: after[key] - before[key] for key in keys})


def test_counts_of_all_workers_add_up_in_every_scrape(cluster: RunningServer) -> None:
    api = _api(cluster)
    before = scrape(cluster)
    sent: Counter[Key] = Counter()
    workers: set[str] = set()
    keys = []
    for n in range(3):
        created = api.write("POST", "/v1/api/create", {"metrics": n})
        sent[_key("/v1/api/create", "POST", created)] += 1
        keys.append(created.body["@id"].rsplit("/", 1)[1])
    for key in keys:
        for _ in range(8):  # each on a new connection: spread over the workers
            reply = api.get(key)
            sent[_key("/v1/id/{id}", "GET", reply)] += 1
            workers.add(reply.worker)
    for _ in range(4):
        sent[_key("/v1/id/{id}", "GET", api.get("0" * 24))] += 1  # 404, cached too
        sent[_key("(unmatched)", "GET", api.call("GET", "/no/such/route"))] += 1
        sent[_key("/v1/api/query", "POST", api.query({"metrics": 1}))] += 1
    assert len(workers) >= 2, workers
    assert {key[2] for key in sent} == {"201", "200", "404"}
    assert {key[3] for key in sent} >= {"HIT", "MISS", "none"}
    hits = sum(count for key, count in sent.items() if key[3] == "HIT")
    misses = sum(count for key, count in sent.items() if key[3] == "MISS")

    # A worker records a request just after sending it, and ships its cache counts to Redis within a
    # second: poll until every count is in.
    deadline = time.monotonic() + 30
    while True:
        after = scrape(cluster)
        counted = _delta(requests_by_key(after), requests_by_key(before), sent)
        timed = _delta(
            requests_by_key(after, "rerum_http_request_duration_seconds_count"),
            requests_by_key(before, "rerum_http_request_duration_seconds_count"),
            sent,
        )

        def grew(name: str, after: Samples = after) -> float:
            return after.get((name, ()), 0) - before.get((name, ()), 0)

        cluster_counts = (grew("rerum_cache_cluster_hits_total"), grew("rerum_cache_cluster_misses_total"))
        if counted == sent and timed == sent and cluster_counts == (hits, misses):
            break
        assert time.monotonic() < deadline, (sent, counted, timed, cluster_counts, (hits, misses))
    assert grew("rerum_cache_fences_total") == 3  # one per create, summed over the workers that wrote
    assert grew("rerum_cache_cluster_fences_total") == 3
    assert grew("rerum_cache_bypasses_total") == 0 and grew("rerum_cache_writes_refused_total") == 0
    assert after[("rerum_cache_up", ())] == 1
    reads = sum(
        value - before.get((name, labels), 0)
        for (name, labels), value in after.items()
        if name == "rerum_cache_script_duration_seconds_count" and dict(labels)["script"] == "read"
    )
    assert reads >= hits + misses  # every cached read ran the read script (lease waits run it again)
    # The route label is the template: no sample names an id.
    assert not any(key in str(labels) for (_, labels) in after for key in keys)
    # The dashboard and the alert rules only use metrics the server exposes.
    exposed = {name for name, _ in after}
    for doc in ("grafana-dashboard.json", "prometheus-alerts.yml"):
        used = set(re.findall(r"rerum_[a-z0-9_]+", (DOCS / doc).read_text()))
        assert used and used <= exposed, (doc, used - exposed)


def _pool_max(server: RunningServer) -> float:
    return scrape(server).get(("rerum_db_pool_connections", (("state", "max"),)), 0)


def test_a_killed_worker_keeps_its_counts_and_leaves_the_pool_gauges(cluster: RunningServer) -> None:
    """granian respawns a killed worker: what the dead one counted stays in the sums, its live pool gauge
    goes (``rerum serve`` marks it dead), so the pool's maximum is again that of four workers."""
    poll(lambda: _pool_max(cluster) == WORKERS * POOL_SIZE, deadline_s=30)
    api = _api(cluster)
    route = ("/v1/api/cache/stats", "GET", "200", "none")
    before = requests_by_key(scrape(cluster))[route]
    answered = Counter(api.call("GET", "/v1/api/cache/stats").worker for _ in range(20))
    poll(lambda: requests_by_key(scrape(cluster))[route] - before == 20, deadline_s=30)
    victim = int(answered.most_common(1)[0][0].rsplit("/", 1)[1])
    metrics_dir = next(Path(cluster.data_dir, "metrics").iterdir())
    assert list(metrics_dir.glob(f"gauge_livesum_{victim}.db"))

    os.kill(victim, signal.SIGKILL)
    poll(lambda: not alive(victim), deadline_s=30)
    poll(lambda: victim not in cluster.worker_pids() and len(cluster.worker_pids()) == WORKERS, deadline_s=60)
    poll(lambda: not list(metrics_dir.glob(f"gauge_livesum_{victim}.db")), deadline_s=30)
    poll(lambda: _pool_max(cluster) == WORKERS * POOL_SIZE, deadline_s=30)
    assert requests_by_key(scrape(cluster))[route] - before == 20
    assert list(metrics_dir.glob(f"counter_{victim}.db")), "the dead worker's counts were dropped"

"""`rerum serve --workers 4` as a subprocess: requests spread over workers, writes visible on all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from rerum_server.auth.local_key import mint_token
from tests.conftest import AGENT_CLAIM, OWNER
from tests.support.database import DatabaseServer
from tests.support.server import RunningServer, scratch

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(test_database: DatabaseServer) -> Iterator[RunningServer]:
    running = RunningServer(
        workers=4,
        data_dir=scratch("cluster"),
        database_url=test_database.new_database(),
    )
    yield running
    assert running.stop() == 0, running.log()


def _on_new_connection(method: str, url: str, **kwargs: object) -> httpx.Response:
    with httpx.Client(timeout=30) as fresh:  # a new client is a new TCP connection
        return fresh.request(method, url, **kwargs)  # type: ignore[arg-type]


def test_new_connections_are_answered_by_several_workers(cluster: RunningServer) -> None:
    workers = Counter(
        _on_new_connection("GET", cluster.url + "/v1/api").headers["x-rerum-worker"] for _ in range(100)
    )
    assert sum(workers.values()) == 100
    assert len(workers) >= 2, workers
    assert all(value.count("/") == 1 and value.rsplit("/", 1)[1].isdigit() for value in workers)


def test_a_write_is_read_back_on_other_connections_and_workers(cluster: RunningServer) -> None:
    auth = {
        "Authorization": "Bearer " + mint_token(cluster.data_dir.resolve(), OWNER, agent_claim=AGENT_CLAIM)
    }
    created = _on_new_connection("POST", cluster.url + "/v1/api/create", json={"n": 1}, headers=auth)
    assert created.status_code == 201
    location = created.headers["location"]
    writer = created.headers["x-rerum-worker"]
    updated = _on_new_connection(
        "PUT", cluster.url + "/v1/api/overwrite", json={"@id": location, "n": 2}, headers=auth
    )
    assert updated.status_code == 200
    readers = set()
    path = "/v1/id/" + location.rsplit("/", 1)[1]
    for _ in range(40):
        read = _on_new_connection("GET", cluster.url + path)
        assert read.status_code == 200
        assert read.json()["n"] == 2
        readers.add(read.headers["x-rerum-worker"])
    assert readers - {writer}, "every read landed on the writer's worker"

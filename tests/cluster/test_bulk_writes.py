"""A large bulk write keeps every cache script small and leaves other clients' writes alone (issue 10.5).

Before: a bulkCreate of thousands of items fenced one stamp per document (three Redis keys each) in one
script, which outlasted the Redis timeout; the worker then backed off and refused other clients' small
writes with 503. Now a write naming more than ``MAX_WRITE_STAMPS`` stamps changes the one stamp every
entry depends on (``all``) instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
import redis

from rerum_server.cache.stamps import ALL, MAX_WRITE_STAMPS, write_stamps
from rerum_server.embedded.redis import EmbeddedRedis
from rerum_server.versioning.change import Change
from tests.conftest import OWNER
from tests.support.database import DatabaseServer, fingerprint
from tests.support.server import RunningServer, free_port, scratch

pytestmark = pytest.mark.cluster
ITEMS = 1_000  # RERUM_MAX_BULK_ITEMS's default


@pytest.fixture(scope="module")
def stores(test_database: DatabaseServer) -> Iterator[tuple[redis.Redis, RunningServer]]:
    base = scratch("bulk-writes")
    redis_server = EmbeddedRedis(base, port=free_port())
    url = redis_server.start()
    server = RunningServer(
        workers=2,
        data_dir=base / "server",
        database_url=test_database.new_database(),
        env={"REDIS_URL": url},
    )
    client = redis.Redis.from_url(url)
    yield client, server
    client.close()
    server.stop()
    redis_server.stop()


def _generation_keys(client: redis.Redis) -> int:
    return sum(1 for _ in client.scan_iter(match="*:g:*", count=1000))


def test_a_write_of_many_documents_changes_one_stamp_instead_of_thousands() -> None:
    docs = tuple({"_id": f"{n:024x}", "@id": f"http://x/{n}", "n": n} for n in range(2_000))
    assert write_stamps(Change(inserted=docs)) == [ALL]
    assert len(write_stamps(Change(inserted=docs[:100]))) <= MAX_WRITE_STAMPS


def test_a_large_bulk_create_is_answered_and_other_clients_writes_are_not_refused(
    stores: tuple[redis.Redis, RunningServer],
) -> None:
    client, server = stores
    auth = server.bearer(OWNER)
    with httpx.Client(base_url=server.url, timeout=120) as http:
        small = http.post("/v1/api/create", json={"small": 0}, headers=auth)
        assert small.status_code == 201
        key = small.json()["@id"].rsplit("/", 1)[1]
        assert http.get(f"/v1/id/{key}").headers["X-Cache"] == "MISS"
        assert http.get(f"/v1/id/{key}").headers["X-Cache"] == "HIT"
        before = _generation_keys(client)

        probe_statuses: list[int] = []
        bulk_done = threading.Event()

        def probe() -> None:
            # small writes from another client while the bulk write runs, on fresh connections
            with httpx.Client(base_url=server.url, timeout=60) as other:
                while not bulk_done.is_set() or len(probe_statuses) < 20:
                    response = other.post("/v1/api/create", json={"probe": len(probe_statuses)}, headers=auth)
                    probe_statuses.append(response.status_code)

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            bulk = http.post("/v1/api/bulkCreate", json=[{"item": n} for n in range(ITEMS)], headers=auth)
        finally:
            bulk_done.set()
            prober.join()
        assert bulk.status_code == 201, bulk.text
        assert len(bulk.json()) == ITEMS
        assert set(probe_statuses) == {201}, probe_statuses
        # the bulk write changed `all` rather than one generation per document it made
        assert _generation_keys(client) - before < len(probe_statuses) * 40
        assert http.get(f"/v1/id/{key}").headers["X-Cache"] == "MISS"
        assert http.get("/v1/api/cache/stats").status_code == 200
    assert fingerprint(server.env["DATABASE_URL"])[0] == 1 + ITEMS + len(probe_statuses)


def test_a_bulk_request_beyond_the_limit_is_refused_with_413_and_writes_nothing(
    stores: tuple[redis.Redis, RunningServer],
) -> None:
    _, server = stores
    auth = server.bearer(OWNER)
    before = fingerprint(server.env["DATABASE_URL"])
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for path, method, item in (("bulkCreate", "POST", {}), ("bulkUpdate", "PUT", {"@id": "http://x/1"})):
            body = [{**item, "n": n} for n in range(ITEMS + 1)]
            response = http.request(method, f"/v1/api/{path}", json=body, headers=auth)
            assert response.status_code == 413, response.text
            assert f"at most {ITEMS} objects (this one has {ITEMS + 1})" in response.text
    assert fingerprint(server.env["DATABASE_URL"]) == before

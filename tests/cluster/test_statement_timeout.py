"""A request whose statement runs into the statement timeout answers 503 saying so, on every endpoint
(it used to be a bare 500 everywhere but /query), and a cancelled write leaves the database unchanged.

The statement is held up deterministically: the test locks the documents table, so every statement of
the server waits for the lock until the statement timeout cancels it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from rerum_server.app import STATEMENT_TIMEOUT_MESSAGE
from tests.conftest import OWNER
from tests.support.database import DatabaseServer, fingerprint
from tests.support.server import RunningServer, scratch

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def server(test_database: DatabaseServer) -> Iterator[RunningServer]:
    running = RunningServer(
        workers=1,
        data_dir=scratch("statement-timeout"),
        database_url=test_database.new_database(),
        env={"RERUM_STATEMENT_TIMEOUT_MS": "100", "CACHE_ENABLED": "false"},
    )
    yield running
    running.stop()


async def _while_locked(server: RunningServer, auth: dict[str, str], key: str) -> list[httpx.Response]:
    connection = await asyncpg.connect(server.env["DATABASE_URL"])
    try:
        async with connection.transaction():
            await connection.execute("LOCK TABLE rerum_objects IN ACCESS EXCLUSIVE MODE")
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                return [
                    await http.post("/v1/api/search", json={"searchText": "alpha"}),
                    await http.post("/v1/api/search/phrase", json={"searchText": "alpha beta"}),
                    await http.get(f"/v1/id/{key}"),
                    await http.get(f"/v1/history/{key}"),
                    await http.post("/v1/api/create", json={"n": 2}, headers=auth),
                    await http.put(
                        "/v1/api/overwrite",
                        json={"@id": server.env["RERUM_ID_PREFIX"] + key, "n": 3},
                        headers=auth,
                    ),
                ]
    finally:
        await connection.close()


def test_statements_cancelled_by_the_statement_timeout_answer_503_saying_so(server: RunningServer) -> None:
    auth = server.bearer(OWNER)
    created = httpx.post(server.url + "/v1/api/create", json={"n": 1, "text": "alpha beta"}, headers=auth)
    assert created.status_code == 201
    key = created.json()["@id"].rsplit("/", 1)[1]
    before = fingerprint(server.env["DATABASE_URL"])
    for response in asyncio.run(_while_locked(server, auth, key)):
        assert response.status_code == 503, (response.request.url, response.text)
        assert STATEMENT_TIMEOUT_MESSAGE in response.json()["message"]
    assert fingerprint(server.env["DATABASE_URL"]) == before

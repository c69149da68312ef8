"""Session fixtures: one real PostgreSQL and one real `rerum serve --workers 2` per test process."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import httpx
import pytest

from rerum_server.auth.local_key import mint_token
from tests.support import reports
from tests.support.database import DatabaseServer, fingerprint
from tests.support.server import TEST_DATA, RunningServer, process_name, scratch

AGENT_CLAIM = "http://store.rerum.io/agent"
OWNER = "https://store.rerum.io/v1/id/owner0000000000000000001"
STRANGER = "https://store.rerum.io/v1/id/stranger00000000000000002"


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist)
        reports.clear()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    texts = reports.collected()
    if texts:
        terminalreporter.section("verification runs")
        for text in texts:
            terminalreporter.write(text + "\n")


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Every server, Redis and PostgreSQL of this process has stopped (session fixtures are finalised
    # before this hook): its data goes, and only its own, so a concurrent run keeps its data.
    shutil.rmtree(TEST_DATA / process_name(), ignore_errors=True)


@pytest.fixture(scope="session")
def test_database() -> Iterator[DatabaseServer]:
    database = DatabaseServer(process_name())
    yield database
    database.stop()


@pytest.fixture(scope="session")
def server(test_database: DatabaseServer) -> Iterator[RunningServer]:
    running = RunningServer(workers=2, data_dir=scratch("server"), database_url=test_database.new_database())
    yield running
    running.stop()


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def token_for(server: RunningServer) -> Callable[[str], str]:
    """A function minting a valid bearer token for an agent URI, signed by the server's local key."""
    return lambda agent: mint_token(server.data_dir.resolve(), agent, agent_claim=AGENT_CLAIM)


@pytest.fixture(scope="session")
def owner(token_for: Callable[[str], str]) -> dict[str, str]:
    return {"Authorization": "Bearer " + token_for(OWNER)}


@pytest.fixture(scope="session")
def stranger(token_for: Callable[[str], str]) -> dict[str, str]:
    return {"Authorization": "Bearer " + token_for(STRANGER)}


@pytest.fixture
def unchanged_database(server: RunningServer) -> Iterator[None]:
    """Asserts that the test wrote nothing to the database."""
    before = fingerprint(server.env["DATABASE_URL"])
    yield
    assert fingerprint(server.env["DATABASE_URL"]) == before, "the request changed the database"

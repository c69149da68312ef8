"""A real Redis for the in-process cache tests: embedded Valkey, or RERUM_TEST_REDIS_URL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from rerum_server.embedded.redis import EmbeddedRedis
from tests.support.database import DatabaseServer
from tests.support.harness import Harness, run
from tests.support.server import new_namespace, scratch


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    configured = os.environ.get("RERUM_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    server = EmbeddedRedis(scratch("redis"))
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
def database_url(test_database: DatabaseServer) -> str:
    return test_database.new_database()


@pytest.fixture
def in_harness(database_url: str, redis_url: str) -> Callable[..., Any]:
    """Run an async scenario against a fresh cache namespace (no entries, no warm-up)."""

    def runner(scenario: Callable[[Harness], Awaitable[Any]], **options: Any) -> Any:
        return asyncio.run(run(database_url, redis_url, new_namespace(redis_url), scenario, **options))

    return runner

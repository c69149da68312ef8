"""Fixtures of the black-box HTTP tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    """One keep-alive client per module, for module-scoped fixtures that create objects up front."""
    with httpx.Client(base_url=server.url, timeout=30) as module_client:
        yield module_client

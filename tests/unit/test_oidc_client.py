"""The /client/* helpers' OAuth client against a real local issuer: timeouts, unreachable issuers, discovery."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from rerum_server.auth.oidc_client import ClientSettings, IssuerRefused, IssuerUnavailable, OidcClient
from rerum_server.errors import NotImplementedByRerum
from tests.support.oidc_issuer import DISCOVERY_PATH, OidcIssuer


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as running:
        yield running


def _settings(base_url: str | None, client_id: str | None = "cid") -> ClientSettings:
    return ClientSettings(
        issuer_base_url=base_url,
        client_id=client_id,
        client_secret="secret",
        audience="urn:aud",
        redirect_uri="https://store.example.org/v1/",
    )


def _run(base_url: str | None, action: Callable[[OidcClient], Awaitable[Any]], timeout: float = 5.0) -> Any:
    async def main() -> Any:
        client = OidcClient(httpx.AsyncClient(timeout=timeout), _settings(base_url))
        try:
            return await action(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_a_token_endpoint_slower_than_the_timeout_is_unavailable(issuer: OidcIssuer) -> None:
    issuer.token_delay = 1.0
    with pytest.raises(IssuerUnavailable) as raised:
        _run(issuer.base_url, lambda client: client.refresh_access_token("r"), timeout=0.3)
    assert str(raised.value) == "The OIDC issuer could not be reached (ReadTimeout)."


def test_an_unreachable_issuer_is_unavailable_and_retried_next_time(issuer: OidcIssuer) -> None:
    with OidcIssuer() as stopped:
        base_url = stopped.base_url
    with pytest.raises(IssuerUnavailable) as raised:
        _run(base_url, lambda client: client.authorize_url())
    assert str(raised.value) == "The OIDC issuer could not be reached (ConnectError)."

    async def twice(client: OidcClient) -> bytes:
        issuer.fail_discovery = True
        with pytest.raises(IssuerUnavailable):
            await client.refresh_access_token("r")
        issuer.fail_discovery = False
        return await client.refresh_access_token("r")

    issuer.fail_discovery = False
    assert _run(issuer.base_url, twice) is not None
    assert issuer.requests[DISCOVERY_PATH] == 2  # a failed discovery is not cached


def test_discovery_is_shared_by_concurrent_requests(issuer: OidcIssuer) -> None:
    async def many(client: OidcClient) -> list[bytes]:
        return await asyncio.gather(*(client.refresh_access_token(f"r{n}") for n in range(8)))

    replies = _run(issuer.base_url, many)
    assert len(replies) == 8
    assert issuer.requests[DISCOVERY_PATH] == 1
    assert len(issuer.token_requests) == 8


def test_refusal_carries_the_issuers_status_and_description(issuer: OidcIssuer) -> None:
    issuer.token_reply = (429, {"error": "too_many_requests", "error_description": "slow down"})
    with pytest.raises(IssuerRefused) as raised:
        _run(issuer.base_url, lambda client: client.exchange_code("c"))
    assert (raised.value.status, raised.value.description) == (429, "slow down")


def test_success_is_the_issuers_bytes_unchanged(issuer: OidcIssuer) -> None:
    issuer.token_reply = (200, b'{ "access_token" : "a",  "x": [1, 2] }')
    assert _run(issuer.base_url, lambda client: client.refresh_access_token("r")) == (
        b'{ "access_token" : "a",  "x": [1, 2] }'
    )


@pytest.mark.parametrize(("base_url", "client_id"), [(None, "cid"), ("https://issuer.example.org", None)])
def test_without_issuer_or_client_id_the_helpers_are_not_implemented(
    base_url: str | None, client_id: str | None
) -> None:
    async def action(client: OidcClient) -> Any:
        return await client.refresh_access_token("r")

    async def main() -> None:
        client = OidcClient(httpx.AsyncClient(), _settings(base_url, client_id))
        try:
            assert not client.configured
            with pytest.raises(NotImplementedByRerum):
                await action(client)
            with pytest.raises(NotImplementedByRerum):
                await client.authorize_url()
        finally:
            await client.aclose()

    asyncio.run(main())


def test_the_secret_is_not_in_the_settings_repr() -> None:
    assert "secret" not in repr(_settings("https://issuer.example.org"))

"""This server as an OAuth client of the configured OIDC issuer: the ``/client/*`` token helpers (spec 10.2).

The reference hard-coded its Auth0 tenant's ``/authorize`` and ``/oauth/token``; here both come from the
discovery document of ``ISSUER_BASE_URL`` (fetched asynchronously, cached, shared by concurrent requests),
so the helpers work with whichever issuer verifies the tokens.

Token requests are standard OAuth 2.0 (RFC 6749 §4.1.3, §6): a form-encoded POST with the client
credentials in the body (``client_secret_post``, Auth0's default). The outcomes the handlers render:

* the issuer's success JSON, byte for byte (:meth:`OidcClient.request_token` returns it);
* an OAuth error (4xx with a JSON ``error``) → :class:`IssuerRefused` with the issuer's status and
  ``error_description`` (the reference answered 500 for every refusal);
* no usable answer (network failure, timeout, 5xx, not JSON, bad discovery) → :class:`IssuerUnavailable`
  (the handlers answer 502);
* no issuer or no ``CLIENT_ID`` configured → 501.

The client secret is only ever sent to the token endpoint; nothing here logs it or a token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import orjson

from rerum_server import errors

log = logging.getLogger(__name__)

#: Connect/read/write timeout for the issuer; a token endpoint slower than this answers 502.
HTTP_TIMEOUT = httpx.Timeout(10.0)
DISCOVERY_PATH = "/.well-known/openid-configuration"
NOT_CONFIGURED = (
    "The /client token helpers are not available: this server has no OIDC issuer configured "
    "(set ISSUER_BASE_URL and CLIENT_ID, and CLIENT_SECRET for a confidential client)."
)


@dataclass(frozen=True)
class ClientSettings:
    """What the helpers need: the issuer, this server's client credentials, and the registration values."""

    issuer_base_url: str | None
    client_id: str | None
    client_secret: str | None = field(repr=False)
    audience: str
    redirect_uri: str  # RERUM_PREFIX, as the reference registers it


class IssuerUnavailable(Exception):
    """The issuer gave no usable answer; the message is safe to show to the client."""


class IssuerRefused(Exception):
    """The issuer refused the grant with an OAuth error: its HTTP status and description."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


@dataclass(frozen=True)
class _Endpoints:
    authorization: str | None
    token: str | None
    fetched_at: float


class OidcClient:
    """One worker's OAuth client of the configured issuer, over an ``httpx.AsyncClient`` it closes."""

    #: The discovery document is fetched again after this many seconds (issuers rarely move endpoints).
    DISCOVERY_MAX_AGE = 3600.0

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: ClientSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._settings = settings
        self._clock = clock
        self._endpoints: _Endpoints | None = None
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        """Whether an issuer and a client id are configured (else every helper answers 501)."""
        return bool(self._settings.issuer_base_url and self._settings.client_id)

    async def aclose(self) -> None:
        """Close the HTTP client (at worker shutdown)."""
        await self._http.aclose()

    # ------------------------------------------------------------------ the helpers

    async def authorize_url(self) -> str:
        """The issuer's authorization URL that registers a RERUM client (``GET /client/register``)."""
        client_id = self._client_id()
        endpoint = (await self._discovered()).authorization
        if endpoint is None:
            raise IssuerUnavailable("The OIDC issuer's discovery document has no authorization_endpoint.")
        params = {
            "audience": self._settings.audience,
            "scope": "offline_access",
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": self._settings.redirect_uri,
            "state": "register",
        }
        # encodeURIComponent-style (spaces as %20, "/" and ":" escaped), in the reference's order.
        query = urlencode(params, quote_via=quote, safe="")
        return endpoint + ("&" if "?" in endpoint else "?") + query

    async def refresh_access_token(self, refresh_token: str) -> bytes:
        """A new access token for a refresh token (``POST /client/request-new-access-token``)."""
        return await self.request_token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def exchange_code(self, code: str) -> bytes:
        """Tokens (including a refresh token) for an authorization code (``request-new-refresh-token``)."""
        grant = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self._settings.redirect_uri,
        }
        return await self.request_token(grant)

    async def request_token(self, grant: dict[str, str]) -> bytes:
        """POST ``grant`` with the client credentials to the token endpoint; the success JSON as sent."""
        form = {**grant, "client_id": self._client_id()}
        if self._settings.client_secret:
            form["client_secret"] = self._settings.client_secret
        endpoint = (await self._discovered()).token
        if endpoint is None:
            raise IssuerUnavailable("The OIDC issuer's discovery document has no token_endpoint.")
        try:
            response = await self._http.post(endpoint, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            # The exception text never holds the form (it names the URL at most).
            log.warning("token request to %s failed: %s", endpoint, type(exc).__name__)
            raise IssuerUnavailable(f"The OIDC issuer could not be reached ({type(exc).__name__}).") from None
        body = _json_object(response.content)
        if response.is_success and body is not None:
            return response.content
        if 400 <= response.status_code < 500 and body is not None and isinstance(body.get("error"), str):
            description = body.get("error_description")
            raise IssuerRefused(
                response.status_code, description if isinstance(description, str) else body["error"]
            )
        log.warning("token endpoint %s answered %s", endpoint, response.status_code)
        raise IssuerUnavailable(
            f"The OIDC issuer answered {response.status_code} without a usable token response."
        )

    # ------------------------------------------------------------------ configuration and discovery

    def _client_id(self) -> str:
        if not self.configured or self._settings.client_id is None:
            raise errors.NotImplementedByRerum(NOT_CONFIGURED)
        return self._settings.client_id

    async def _discovered(self) -> _Endpoints:
        endpoints = self._endpoints
        if endpoints is not None and self._clock() - endpoints.fetched_at < self.DISCOVERY_MAX_AGE:
            return endpoints
        async with self._lock:  # concurrent requests share one fetch
            endpoints = self._endpoints
            if endpoints is None or self._clock() - endpoints.fetched_at >= self.DISCOVERY_MAX_AGE:
                endpoints = self._endpoints = await self._fetch_discovery()
        return endpoints

    async def _fetch_discovery(self) -> _Endpoints:
        base = self._settings.issuer_base_url
        assert base is not None
        url = base.rstrip("/") + DISCOVERY_PATH
        started = self._clock()
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            log.warning("OIDC discovery %s failed: %s", url, type(exc).__name__)
            raise IssuerUnavailable(f"The OIDC issuer could not be reached ({type(exc).__name__}).") from None
        doc = _json_object(response.content) if response.is_success else None
        if doc is None:
            log.warning("OIDC discovery %s answered %s", url, response.status_code)
            raise IssuerUnavailable("The OIDC issuer's discovery document could not be read.")
        return _Endpoints(_url(doc.get("authorization_endpoint")), _url(doc.get("token_endpoint")), started)


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None

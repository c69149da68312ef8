"""The ``/client/*`` token helpers (spec 10.2): registration URL, token proxies, token check.

No RERUM auth on the proxies; ``/client/verify`` runs the bearer-token chain. The issuer's answers are
rendered here (see ``auth/oidc_client.py`` for what each outcome means):

* success → 200 with the issuer's JSON unchanged;
* an OAuth refusal → the issuer's status with its ``error_description`` as text (the reference: 500);
* no usable answer from the issuer → 502 with a text saying so (the reference: 500 ``{}``);
* no issuer configured → 501.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable

from rerum_server import errors
from rerum_server.answers import JSON
from rerum_server.auth.oidc_client import NOT_CONFIGURED, IssuerRefused, IssuerUnavailable, OidcClient
from rerum_server.web.context import Services
from rerum_server.web.http import Request, Response

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
VERIFIED = "The token was verified by Auth0"


def _oidc(services: Services) -> OidcClient:
    if services.oidc is None or not services.oidc.configured:
        raise errors.NotImplementedByRerum(NOT_CONFIGURED)
    return services.oidc


def _body_field(request: Request, name: str) -> str:
    """A non-empty string property of the JSON body, else 400 (the reference crashed with 500)."""
    body = request.body if request.body_kind == "json" else None
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise errors.BadRequest(f'The body must be JSON like {{"{name}":"..."}}.')
    return value


async def _token_response(outcome: Awaitable[bytes]) -> Response:
    try:
        return Response(200, await outcome, [("Cache-Control", "no-store")], JSON)
    except IssuerRefused as refused:
        return Response(refused.status, refused.description.encode(), [("Cache-Control", "no-store")], TEXT)
    except IssuerUnavailable as unavailable:
        return Response(502, str(unavailable).encode(), [], TEXT)


async def register(request: Request, services: Services) -> Response:
    """``GET /client/register``: the issuer's authorization URL for registering, as text."""
    try:
        url = await _oidc(services).authorize_url()
    except IssuerUnavailable as unavailable:
        return Response(502, str(unavailable).encode(), [], TEXT)
    return Response(200, url.encode(), [], HTML)


async def request_new_access_token(request: Request, services: Services) -> Response:
    """``POST /client/request-new-access-token`` (``/v1/api/accessToken``): ``{"refresh_token": ...}``."""
    client = _oidc(services)
    refresh_token = _body_field(request, "refresh_token")
    return await _token_response(client.refresh_access_token(refresh_token))


async def request_new_refresh_token(request: Request, services: Services) -> Response:
    """``POST /client/request-new-refresh-token`` (``/v1/api/refreshToken``): ``{"authorization_code": ...}``."""
    client = _oidc(services)
    code = _body_field(request, "authorization_code")
    return await _token_response(client.exchange_code(code))


async def verify(request: Request, services: Services) -> Response:
    """``GET|HEAD /client/verify``: 200 when the bearer token verifies (the reference's checkJwt chain)."""
    # Forbidden is raised only after the token verified, for a token naming no RERUM agent; the
    # reference's checkJwt chain does not ask for an agent, so such a token counts as verified.
    with contextlib.suppress(errors.Forbidden):
        await services.agent(request)
    return Response(200, VERIFIED.encode(), [], TEXT)

"""Bearer-token verification: the ``checkJwt`` chain of the reference server, with real verification.

The wire behaviour (statuses, messages, challenges) follows spec §5.1/§5.2; the differences are
deliberate fixes:

* the agent is read from the *verified* claims, never from an unverified decode of the header;
* ``BOT_AGENT`` only forgives the expiry of a token that is otherwise fully valid (signature, issuer,
  audience) and names the bot; the reference forgave any failure of any token naming the bot,
  including forged unsigned ones (spec §13.6).

Three ways to obtain the keys, chosen by :class:`AuthSettings`:

* discovery (``issuer_base_url``): ``<base>/.well-known/openid-configuration`` gives ``issuer``,
  ``jwks_uri`` and the allowed algorithms;
* a JWKS URL (``jwks_uri``) plus an explicit ``issuer``;
* local mode (neither): the embedded key of :mod:`rerum_server.auth.local_key`.

All network I/O is asynchronous (httpx) and cached; concurrent requests share one fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from rerum_server.auth.local_key import LOCAL_ISSUER, local_jwks
from rerum_server.errors import BadRequest, Forbidden, Unauthorized

__all__ = [
    "ALLOWED_ALGORITHMS",
    "DEFAULT_AGENT_CLAIM",
    "AuthSettings",
    "TokenVerifier",
]

log = logging.getLogger(__name__)

DEFAULT_AGENT_CLAIM = "http://store.rerum.io/agent"
# Fallback claim names searched after the configured one, in the reference's order (spec §5.2).
_FALLBACK_AGENT_CLAIMS = ("http://devstore.rerum.io/v1/agent", "http://store.rerum.io/agent")

# Asymmetric algorithms only.  ``none`` and HS* are never accepted whatever the issuer advertises:
# with a JWKS of public keys, an HMAC "secret" would be public knowledge (the classic confusion attack).
ALLOWED_ALGORITHMS: tuple[str, ...] = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
# The challenge text is the reference's, byte for byte (it lists ES256K although we never accept it).
_CHALLENGE_ALGS = 'DPoP algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES256K ES384 ES512 EdDSA"'
_NO_TOKEN_CHALLENGE = f'Bearer realm="api", {_CHALLENGE_ALGS}'

_LEEWAY_SECONDS = 5
_HTTP_TIMEOUT = httpx.Timeout(5.0)

# Which JWK a token algorithm may be verified with: key type and, for EC/OKP, the curve.
_KEY_TYPE_FOR_ALG: dict[str, tuple[str, frozenset[str] | None]] = {
    **{alg: ("RSA", None) for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}

# Short, clear descriptions used as the 401 message (and, quotes softened, in the challenge).
_FETCH_FAILED = "unable to fetch the signing keys"
_NO_KEY = "no applicable key found in the JSON Web Key Set"
_BAD_JWS = "Invalid Compact JWS"
_EXPIRED = '"exp" claim timestamp check failed'
_BAD_SIGNATURE = "signature verification failed"
_BAD_AUD = "Unexpected 'aud' value"
_BAD_ISS = "Unexpected 'iss' value"


@dataclass(frozen=True)
class AuthSettings:
    """How tokens are verified; built from the environment by the app (see spec §7.1)."""

    audience: str  # required `aud` (AUDIENCE env; LOCAL_AUDIENCE by default)
    agent_claim: str  # RERUM_AGENT_CLAIM (default "http://store.rerum.io/agent")
    issuer: str | None = None  # expected `iss`; from discovery when None; LOCAL_ISSUER in local mode
    issuer_base_url: str | None = None  # OIDC discovery base (ISSUER_BASE_URL)
    jwks_uri: str | None = None  # JWKS_URI; overrides the discovered one
    bot_agent: str | None = None  # BOT_AGENT: may use an expired (but otherwise valid) token
    local_key_dir: Path | None = None  # data dir of the embedded key; used when no issuer is configured


def _invalid_token(desc: str) -> Unauthorized:
    """The ``invalid_token`` 401 of the reference: message ``desc`` plus the Bearer challenge."""
    # An auth-param value cannot contain a bare double quote; the reference's library turns them into
    # single quotes inside the challenge only (spec §12.2: `"exp" …` vs `error_description="'exp' …"`).
    quoted = desc.replace("\\", "\\\\").replace('"', "'")
    challenge = f'Bearer realm="api", error="invalid_token", error_description="{quoted}", {_CHALLENGE_ALGS}'
    return Unauthorized(desc, challenge=challenge)


def _bearer_token(authorization: str | None) -> str:
    """Extract the token from an ``Authorization`` value, raising the reference's errors for bad shapes."""
    if not authorization:
        raise Unauthorized("Unauthorized", challenge=_NO_TOKEN_CHALLENGE)
    parts = authorization.split(" ")
    # `Bearer a b`, `Bearer`, `Bearer ` (empty token): the library's invalid_request, a bare 400.
    if len(parts) != 2 or not parts[1]:
        raise BadRequest("")
    scheme, token = parts
    if scheme.lower() not in ("bearer", "dpop"):
        # Empty message: the error renderer adds "Your token is not in the correct format…".
        raise Unauthorized("")
    return token


def _js_truthy(value: Any) -> bool:
    """JavaScript truthiness: only undefined/null/false/0/NaN/"" are falsy ({} and [] are truthy)."""
    if value is None or value is False:
        return False
    if isinstance(value, int | float):
        return value == value and value != 0  # NaN != NaN
    if isinstance(value, str):
        return value != ""
    return True


def _agent_from(claims: dict[str, Any], agent_claim: str) -> str:
    """The RERUM agent URI: the first truthy of the configured claim and the two historical names."""
    for name in (agent_claim, *_FALLBACK_AGENT_CLAIMS):
        value = claims.get(name)
        if _js_truthy(value):
            if isinstance(value, str):
                return value
            break  # The reference would use a non-string agent as is; we refuse it instead.
    raise Forbidden("Could not get agent from req.user.  Have you registered with RERUM?")


def _jwk_fits(jwk: dict[str, Any], alg: str) -> bool:
    """Whether ``jwk`` is a signing key usable with ``alg`` (right type and curve, no conflicting alg)."""
    kty, curves = _KEY_TYPE_FOR_ALG[alg]
    if jwk.get("kty") != kty:
        return False
    if curves is not None and jwk.get("crv") not in curves:
        return False
    if jwk.get("use", "sig") != "sig":
        return False
    # A key that declares its algorithm may only be used with that one (RFC 7517 §4.4).
    return jwk.get("alg", alg) == alg


class _KeySet:
    """A fetched JWKS plus the PyJWK objects built from it so far, keyed by (index, alg)."""

    def __init__(self, jwks: Any, fetched_at: float) -> None:
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(keys, list):
            raise ValueError("the JWKS has no 'keys' array")
        self.keys: list[dict[str, Any]] = [k for k in keys if isinstance(k, dict)]
        self.fetched_at = fetched_at
        self._bound: dict[tuple[int, str], PyJWK] = {}

    def find(self, kid: str | None, alg: str) -> PyJWK | None:
        """The key for ``kid`` (or the only fitting key when the token names none), bound to ``alg``."""
        candidates = [
            (i, k)
            for i, k in enumerate(self.keys)
            if _jwk_fits(k, alg) and (kid is None or k.get("kid") == kid)
        ]
        # Without a kid, guessing among several keys would let the token choose; require exactly one.
        if not candidates or (kid is None and len(candidates) > 1):
            return None
        index, jwk = candidates[0]
        bound = self._bound.get((index, alg))
        if bound is None:
            try:
                bound = PyJWK(jwk, algorithm=alg)
            except jwt.PyJWTError:
                return None
            self._bound[(index, alg)] = bound
        return bound


class _SingleFlight:
    """Runs at most one instance of a coroutine at a time; concurrent callers share its outcome."""

    def __init__(self) -> None:
        self._task: asyncio.Task[Any] | None = None

    async def run(self, factory: Callable[[], Awaitable[Any]]) -> Any:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(factory())
        # shield: one cancelled request must not cancel the fetch the others are waiting for.
        return await asyncio.shield(self._task)


class TokenVerifier:
    """Verifies ``Authorization`` headers and returns the RERUM agent of the token.

    One instance per process; it caches the discovery document and the JWKS.
    """

    #: An unknown ``kid`` refetches the JWKS at most this often (seconds), so junk kids cannot make
    #: us hammer the issuer.
    KID_REFETCH_COOLDOWN = 30.0
    #: A cached remote JWKS is refetched when it is older than this (seconds), so removed keys stop
    #: being accepted.
    JWKS_MAX_AGE = 600.0

    def __init__(
        self,
        settings: AuthSettings,
        http: httpx.AsyncClient | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Check the settings; nothing is fetched until the first token arrives.

        ``http`` is used for discovery and JWKS requests (and not closed by :meth:`aclose`); without
        it the verifier owns a client.  ``clock`` (monotonic seconds) exists for tests of the caches.
        """
        self._settings = settings
        self._local = settings.issuer_base_url is None and settings.jwks_uri is None
        if self._local and settings.local_key_dir is None:
            raise ValueError("no ISSUER_BASE_URL or JWKS_URI configured and no local key directory given")
        if settings.jwks_uri is not None and settings.issuer_base_url is None and settings.issuer is None:
            # Without discovery nothing tells us which `iss` to require; refuse to guess.
            raise ValueError("JWKS_URI requires ISSUER (or ISSUER_BASE_URL) to be set")
        self._owns_http = http is None
        self._http = http
        self._clock = clock

        self._issuer: str | None = settings.issuer or (LOCAL_ISSUER if self._local else None)
        self._jwks_uri: str | None = settings.jwks_uri
        self._algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS
        self._discovered = settings.issuer_base_url is None  # nothing to discover
        self._discovery = _SingleFlight()

        self._keyset: _KeySet | None = None
        self._last_kid_refetch: float | None = None
        self._jwks_fetch = _SingleFlight()

    # ------------------------------------------------------------------ public API

    async def agent_for(self, authorization: str | None) -> str:
        """Verify the bearer token of an Authorization header value and return the RERUM agent URI.

        Raises :class:`~rerum_server.errors.Unauthorized` (missing header, wrong scheme, any
        verification failure), :class:`~rerum_server.errors.BadRequest` (header not ``<scheme> <token>``)
        or :class:`~rerum_server.errors.Forbidden` (valid token without a RERUM agent).
        """
        return (await self.verify(authorization))[0]

    async def verify(self, authorization: str | None) -> tuple[str, dict[str, Any]]:
        """Like :meth:`agent_for`, also returning the verified claims (for role checks)."""
        claims = await self._verified_claims(_bearer_token(authorization))
        return _agent_from(claims, self._settings.agent_claim), claims

    async def aclose(self) -> None:
        """Close the HTTP client if this verifier created it."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # ------------------------------------------------------------------ verification

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        """Fully verify ``token`` and return its claims (bot expiry rule included)."""
        if token.count(".") != 2:
            raise _invalid_token(_BAD_JWS)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _invalid_token(_BAD_JWS) from None
        alg = header.get("alg")
        if not isinstance(alg, str) or not alg:
            raise _invalid_token('missing or invalid "alg" header parameter')
        if alg not in ALLOWED_ALGORITHMS:
            raise _invalid_token(f'unsupported algorithm "{alg}"')
        await self._discover()
        if alg not in self._algorithms:
            raise _invalid_token(f'unsupported algorithm "{alg}"')
        kid = header.get("kid")  # PyJWT already checked it is a string when present
        key = await self._key_for(kid, alg)

        try:
            return self._decode(token, key, alg, verify_exp=True)
        except jwt.ExpiredSignatureError:
            if not self._settings.bot_agent:
                raise _invalid_token(_EXPIRED) from None
        except jwt.PyJWTError as exc:
            raise _invalid_token(_describe(exc)) from None
        return self._expired_bot_claims(token, key, alg)

    def _expired_bot_claims(self, token: str, key: PyJWK, alg: str) -> dict[str, Any]:
        """The claims of an expired token if it is the bot's and otherwise valid, else the expiry 401."""
        # Decode again without the expiry check: signature, issuer, audience and claim types must all
        # hold.  (The reference forgave any failure of an *unverified* payload naming the bot.)
        try:
            claims = self._decode(token, key, alg, verify_exp=False)
        except jwt.PyJWTError as exc:
            raise _invalid_token(_describe(exc)) from None
        if claims.get(self._settings.agent_claim) != self._settings.bot_agent:
            raise _invalid_token(_EXPIRED)
        return claims

    def _decode(self, token: str, key: PyJWK, alg: str, *, verify_exp: bool) -> dict[str, Any]:
        """Signature and claim checks by PyJWT, plus the type checks the reference performs."""
        if self._issuer is None:  # PyJWT silently skips the `iss` check when given None
            raise RuntimeError("the expected issuer is unknown")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=self._settings.audience,
            issuer=self._issuer,
            leeway=_LEEWAY_SECONDS,
            options={
                "require": ["exp"],
                "verify_exp": verify_exp,
                # The reference only type-checks iat; PyJWT would also reject an iat a few seconds in
                # the future, turning issuer clock skew into spurious 401s.
                "verify_iat": False,
            },
        )
        iat = claims.get("iat")
        if iat is not None and (isinstance(iat, bool) or not isinstance(iat, int | float)):
            raise jwt.InvalidIssuedAtError('"iat" claim must be a number')
        client_id = claims.get("client_id")
        if client_id is not None and not isinstance(client_id, str):
            raise jwt.InvalidTokenError('"client_id" claim must be a string')
        return claims

    # ------------------------------------------------------------------ discovery and keys

    async def _discover(self) -> None:
        """Fetch the OIDC discovery document once (until it succeeds)."""
        if not self._discovered:
            await self._discovery.run(self._fetch_discovery)

    async def _fetch_discovery(self) -> None:
        base = self._settings.issuer_base_url
        assert base is not None
        url = base.rstrip("/") + "/.well-known/openid-configuration"
        doc = await self._get_json(url)
        if not isinstance(doc, dict):
            raise _fetch_failed(url, "not a JSON object")
        issuer, jwks_uri = doc.get("issuer"), doc.get("jwks_uri")
        if self._issuer is None:
            if not isinstance(issuer, str) or not issuer:
                raise _fetch_failed(url, "no 'issuer'")
            self._issuer = issuer
        if self._jwks_uri is None:
            if not isinstance(jwks_uri, str) or not jwks_uri:
                raise _fetch_failed(url, "no 'jwks_uri'")
            self._jwks_uri = jwks_uri
        advertised = doc.get("id_token_signing_alg_values_supported")
        if isinstance(advertised, list):
            self._algorithms = tuple(a for a in ALLOWED_ALGORITHMS if a in advertised)
        self._discovered = True

    async def _key_for(self, kid: str | None, alg: str) -> PyJWK:
        """The verification key for a token header, fetching or refreshing the JWKS as needed."""
        keyset = self._keyset
        fresh = keyset is None or (not self._local and self._clock() - keyset.fetched_at >= self.JWKS_MAX_AGE)
        if fresh:
            keyset = await self._jwks_fetch.run(self._fetch_jwks)
        assert keyset is not None
        key = keyset.find(kid, alg)
        # A set fetched just now for this very request would not look any different a second time.
        if key is None and not fresh and not self._local and self._may_refetch():
            # Probably a rotated key: look again, at most once per cooldown (whatever the kid, so
            # junk kids cannot make us hammer the issuer).
            self._last_kid_refetch = self._clock()
            keyset = await self._jwks_fetch.run(self._fetch_jwks)
            key = keyset.find(kid, alg)
        if key is None:
            raise _invalid_token(_NO_KEY)
        return key

    def _may_refetch(self) -> bool:
        last = self._last_kid_refetch
        return last is None or self._clock() - last >= self.KID_REFETCH_COOLDOWN

    async def _fetch_jwks(self) -> _KeySet:
        started = self._clock()
        if self._local:
            key_dir = self._settings.local_key_dir
            assert key_dir is not None
            # File I/O (and key generation on a fresh install) stays off the event loop.
            jwks: Any = await asyncio.to_thread(local_jwks, key_dir)
            self._keyset = _KeySet(jwks, started)
            return self._keyset
        assert self._jwks_uri is not None
        jwks = await self._get_json(self._jwks_uri)
        try:
            keyset = _KeySet(jwks, started)
        except ValueError as exc:
            raise _fetch_failed(self._jwks_uri, str(exc)) from None
        self._keyset = keyset
        return keyset

    async def _get_json(self, url: str) -> Any:
        """GET ``url`` and parse JSON; any failure becomes the ``unable to fetch`` 401."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=_HTTP_TIMEOUT)
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _fetch_failed(url, repr(exc)) from None


def _fetch_failed(url: str, why: str) -> Unauthorized:
    """Log the real cause for operators; the client only learns that the keys were unavailable."""
    log.warning("could not fetch %s: %s", url, why)
    return _invalid_token(_FETCH_FAILED)


def _describe(exc: jwt.PyJWTError) -> str:
    """A short description of a PyJWT failure, worded like the reference's where one exists."""
    if isinstance(exc, jwt.InvalidSignatureError):
        return _BAD_SIGNATURE
    if isinstance(exc, jwt.ExpiredSignatureError):
        return _EXPIRED
    if isinstance(exc, jwt.ImmatureSignatureError):
        return '"nbf" claim timestamp check failed'
    if isinstance(exc, jwt.MissingRequiredClaimError):
        if exc.claim == "aud":
            return _BAD_AUD
        if exc.claim == "iss":
            return _BAD_ISS
        return f'missing required "{exc.claim}" claim'
    if isinstance(exc, jwt.InvalidAudienceError):
        return _BAD_AUD
    if isinstance(exc, jwt.InvalidIssuerError):
        return _BAD_ISS
    if isinstance(exc, jwt.InvalidIssuedAtError):
        return '"iat" claim must be a number'
    if isinstance(exc, jwt.exceptions.InvalidSubjectError):
        return '"sub" claim must be a string'
    if isinstance(exc, jwt.exceptions.InvalidJTIError):
        return '"jti" claim must be a string'
    if isinstance(exc, jwt.DecodeError):
        text = str(exc)
        # PyJWT reports non-numeric exp/nbf as DecodeError; everything else here is a broken JWS.
        for claim in ("exp", "nbf"):
            if f"({claim})" in text:
                return f'"{claim}" claim must be a number'
        if text.startswith("Invalid payload string"):
            return "JWT Claims Set must be a top-level JSON object"
        return _BAD_JWS
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "unsupported algorithm"
    if str(exc).startswith(('"client_id"', "Unsupported critical", "Invalid 'crit'")):
        return str(exc)
    return "invalid token"

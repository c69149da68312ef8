"""Token verification (spec §5.1/§5.2) against a real local OIDC issuer, and the embedded local key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import multiprocessing
import os
import stat
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from rerum_server.auth.local_key import (
    LOCAL_AUDIENCE,
    LOCAL_ISSUER,
    ensure_local_key,
    local_jwks,
    mint_token,
)
from rerum_server.auth.verify import AuthSettings, TokenVerifier
from rerum_server.errors import BadRequest, Forbidden, RerumError, Unauthorized
from tests.support.oidc_issuer import (
    DISCOVERY_PATH,
    JWKS_PATH,
    OidcIssuer,
    new_rsa_key,
    public_pem,
    unsigned_compact,
)

T = TypeVar("T")

AGENT_CLAIM = "http://store.rerum.io/agent"
DEV_CLAIM = "http://devstore.rerum.io/v1/agent"
CUSTOM_CLAIM = "https://example.org/claims/rerum-agent"
AUDIENCE = "http://rerum.io/api"
AGENT = "https://store.rerum.io/v1/id/0123456789abcdef01234567"
OTHER_AGENT = "https://store.rerum.io/v1/id/fedcba9876543210fedcba98"
BOT = "https://store.rerum.io/v1/id/5da8c165d933b7aa8ea2a8ca"
ALGS = 'DPoP algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES256K ES384 ES512 EdDSA"'
FORBIDDEN = "Could not get agent from req.user.  Have you registered with RERUM?"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine on a fresh event loop (pytest-asyncio is deliberately not used)."""
    return asyncio.run(coro)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def agent(settings: AuthSettings, authorization: str | None) -> str:
    """Verify one header with a fresh verifier."""
    verifier = TokenVerifier(settings)
    try:
        return await verifier.agent_for(authorization)
    finally:
        await verifier.aclose()


def failure(settings: AuthSettings, authorization: str | None) -> RerumError:
    """The error a fresh verifier raises for ``authorization`` (fails the test if none is raised)."""
    with pytest.raises(RerumError) as info:
        run(agent(settings, authorization))
    return info.value


def assert_invalid_token(err: RerumError, message: str, description: str) -> None:
    """A 401 invalid_token whose challenge carries ``description`` (quotes softened like the reference)."""
    assert type(err) is Unauthorized
    assert err.status == 401
    assert err.message == message
    assert err.challenge == (
        f'Bearer realm="api", error="invalid_token", error_description="{description}", {ALGS}'
    )


def bearer(token: str) -> str:
    return f"Bearer {token}"


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as running:
        yield running


@pytest.fixture
def settings(issuer: OidcIssuer) -> AuthSettings:
    """Discovery mode, like production (ISSUER_BASE_URL + AUDIENCE)."""
    return AuthSettings(audience=AUDIENCE, agent_claim=AGENT_CLAIM, issuer_base_url=issuer.issuer)


def good_claims(issuer: OidcIssuer, **extra: Any) -> dict[str, Any]:
    return issuer.claims(AGENT, agent_claim=AGENT_CLAIM, audience=AUDIENCE, **extra)


# --------------------------------------------------------------------------- the Authorization header


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header_is_401_unauthorized_with_bare_challenge(
    settings: AuthSettings, issuer: OidcIssuer, header: str | None
) -> None:
    err = failure(settings, header)
    assert type(err) is Unauthorized
    assert err.status == 401
    assert err.message == "Unauthorized"
    assert err.challenge == (
        'Bearer realm="api", DPoP algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES256K ES384 ES512 EdDSA"'
    )
    assert sum(issuer.requests.values()) == 0  # rejected before any network I/O


@pytest.mark.parametrize("header", ["Bearer a b", "Bearer", "Bearer ", "Bearer  abc", "Token a b"])
def test_header_not_two_parts_is_400_with_empty_message(
    settings: AuthSettings, issuer: OidcIssuer, header: str
) -> None:
    err = failure(settings, header)
    assert type(err) is BadRequest
    assert err.status == 400
    assert err.message == ""
    assert sum(issuer.requests.values()) == 0


@pytest.mark.parametrize("header", ["Token abc", "Basic dXNlcjpwYXNz", "JWT a.b.c"])
def test_unknown_scheme_is_401_with_empty_message(
    settings: AuthSettings, issuer: OidcIssuer, header: str
) -> None:
    err = failure(settings, header)
    assert type(err) is Unauthorized
    assert err.status == 401
    assert err.message == ""
    assert err.challenge == ""


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "DPoP", "dpop"])
def test_scheme_is_case_insensitive_and_dpop_is_understood(
    settings: AuthSettings, issuer: OidcIssuer, scheme: str
) -> None:
    token = issuer.token(good_claims(issuer))
    assert run(agent(settings, f"{scheme} {token}")) == AGENT


# --------------------------------------------------------------------------- valid tokens, three modes


def test_valid_token_in_discovery_mode(settings: AuthSettings, issuer: OidcIssuer) -> None:
    assert run(agent(settings, bearer(issuer.token(good_claims(issuer))))) == AGENT
    assert issuer.requests[DISCOVERY_PATH] == 1
    assert issuer.requests[JWKS_PATH] == 1


def test_valid_token_in_jwks_uri_mode_with_callers_client(issuer: OidcIssuer) -> None:
    settings = AuthSettings(
        audience=AUDIENCE, agent_claim=AGENT_CLAIM, issuer=issuer.issuer, jwks_uri=issuer.jwks_uri
    )

    async def scenario() -> tuple[str, bool]:
        async with httpx.AsyncClient() as client:
            verifier = TokenVerifier(settings, client)
            found = await verifier.agent_for(bearer(issuer.token(good_claims(issuer))))
            await verifier.aclose()
            return found, client.is_closed  # aclose must leave a borrowed client open

    assert run(scenario()) == (AGENT, False)
    assert issuer.requests[DISCOVERY_PATH] == 0
    assert issuer.requests[JWKS_PATH] == 1


def test_valid_token_in_local_mode_from_mint_token(tmp_path: Path) -> None:
    settings = AuthSettings(audience=LOCAL_AUDIENCE, agent_claim=AGENT_CLAIM, local_key_dir=tmp_path)
    token = mint_token(tmp_path, AGENT, agent_claim=AGENT_CLAIM)
    assert run(agent(settings, bearer(token))) == AGENT
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == LOCAL_ISSUER
    assert claims["aud"] == LOCAL_AUDIENCE
    assert claims["sub"] == AGENT
    assert claims[AGENT_CLAIM] == AGENT
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(token)["kid"] == local_jwks(tmp_path)["keys"][0]["kid"]


def test_audience_list_containing_ours_is_accepted(settings: AuthSettings, issuer: OidcIssuer) -> None:
    claims = good_claims(issuer, aud=["https://cubap.auth0.com/userinfo", AUDIENCE])
    assert run(agent(settings, bearer(issuer.token(claims)))) == AGENT


def test_expiry_has_five_seconds_leeway(settings: AuthSettings, issuer: OidcIssuer) -> None:
    token = issuer.token(good_claims(issuer, expires_in=-2))
    assert run(agent(settings, bearer(token))) == AGENT


def test_concurrent_first_requests_share_one_discovery_and_one_jwks_fetch(
    settings: AuthSettings, issuer: OidcIssuer
) -> None:
    header = bearer(issuer.token(good_claims(issuer)))

    async def scenario() -> list[str]:
        verifier = TokenVerifier(settings)
        try:
            return await asyncio.gather(*(verifier.agent_for(header) for _ in range(20)))
        finally:
            await verifier.aclose()

    assert run(scenario()) == [AGENT] * 20
    assert issuer.requests[DISCOVERY_PATH] == 1
    assert issuer.requests[JWKS_PATH] == 1


# --------------------------------------------------------------------------- claim failures


def test_expired_token(settings: AuthSettings, issuer: OidcIssuer) -> None:
    err = failure(settings, bearer(issuer.token(good_claims(issuer, expires_in=-6))))
    assert err.message == '"exp" claim timestamp check failed'
    # Exactly the reference's observed wire text (spec §12.2).
    assert err.challenge == (
        'Bearer realm="api", error="invalid_token", '
        "error_description=\"'exp' claim timestamp check failed\", "
        'DPoP algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES256K ES384 ES512 EdDSA"'
    )
    assert err.status == 401


def test_missing_exp_is_refused(settings: AuthSettings, issuer: OidcIssuer) -> None:
    err = failure(settings, bearer(issuer.token(good_claims(issuer, exp=None))))
    assert_invalid_token(err, 'missing required "exp" claim', "missing required 'exp' claim")


def test_non_numeric_exp_is_refused(settings: AuthSettings, issuer: OidcIssuer) -> None:
    err = failure(settings, bearer(issuer.token(good_claims(issuer, exp="tomorrow"))))
    assert_invalid_token(err, '"exp" claim must be a number', "'exp' claim must be a number")


def test_wrong_audience(settings: AuthSettings, issuer: OidcIssuer) -> None:
    err = failure(settings, bearer(issuer.token(good_claims(issuer, aud="https://other.example/api"))))
    assert_invalid_token(err, "Unexpected 'aud' value", "Unexpected 'aud' value")


def test_missing_audience(settings: AuthSettings, issuer: OidcIssuer) -> None:
    err = failure(settings, bearer(issuer.token(good_claims(issuer, aud=None))))
    assert_invalid_token(err, "Unexpected 'aud' value", "Unexpected 'aud' value")


def test_wrong_issuer(settings: AuthSettings, issuer: OidcIssuer) -> None:
    err = failure(settings, bearer(issuer.token(good_claims(issuer, iss="https://evil.example/"))))
    assert_invalid_token(err, "Unexpected 'iss' value", "Unexpected 'iss' value")


def test_configured_issuer_overrides_discovered_one(issuer: OidcIssuer) -> None:
    settings = AuthSettings(
        audience=AUDIENCE,
        agent_claim=AGENT_CLAIM,
        issuer="https://cubap.auth0.com/",
        issuer_base_url=issuer.base_url,
    )
    err = failure(settings, bearer(issuer.token(good_claims(issuer))))
    assert_invalid_token(err, "Unexpected 'iss' value", "Unexpected 'iss' value")
    token = issuer.token(good_claims(issuer, iss="https://cubap.auth0.com/"))
    assert run(agent(settings, bearer(token))) == AGENT


def test_local_mode_checks_issuer_and_expiry(tmp_path: Path) -> None:
    settings = AuthSettings(audience=LOCAL_AUDIENCE, agent_claim=AGENT_CLAIM, local_key_dir=tmp_path)
    forged_iss = mint_token(tmp_path, AGENT, agent_claim=AGENT_CLAIM, issuer="https://evil.example/")
    assert_invalid_token(
        failure(settings, bearer(forged_iss)), "Unexpected 'iss' value", "Unexpected 'iss' value"
    )
    expired = mint_token(tmp_path, AGENT, agent_claim=AGENT_CLAIM, expires_in=-60)
    assert failure(settings, bearer(expired)).message == '"exp" claim timestamp check failed'


# --------------------------------------------------------------------------- signature and algorithm failures


def test_unsigned_alg_none_is_refused(settings: AuthSettings, issuer: OidcIssuer) -> None:
    err = failure(settings, bearer(issuer.token(good_claims(issuer), alg="none")))
    assert_invalid_token(err, 'unsupported algorithm "none"', "unsupported algorithm 'none'")


def test_hs256_signed_with_public_key_pem_is_refused_even_if_advertised() -> None:
    # The classic confusion attack: the attacker HMACs with the (public) RSA key as the secret, hoping
    # the verifier feeds that same key to an HMAC check.  The issuer even advertises HS256.
    with OidcIssuer(algs=["RS256", "HS256"]) as issuer:
        settings = AuthSettings(audience=AUDIENCE, agent_claim=AGENT_CLAIM, issuer_base_url=issuer.issuer)
        for secret in (public_pem(issuer.key), json.dumps(issuer.jwks()["keys"][0]).encode()):
            token = issuer.token(good_claims(issuer), alg="HS256", key=secret)
            err = failure(settings, bearer(token))
            assert_invalid_token(err, 'unsupported algorithm "HS256"', "unsupported algorithm 'HS256'")


def test_signature_by_another_key_with_the_right_kid(settings: AuthSettings, issuer: OidcIssuer) -> None:
    token = issuer.token(good_claims(issuer), key=new_rsa_key())
    err = failure(settings, bearer(token))
    assert_invalid_token(err, "signature verification failed", "signature verification failed")


def test_tampered_payload(settings: AuthSettings, issuer: OidcIssuer) -> None:
    header, _, signature = issuer.token(good_claims(issuer)).split(".")
    forged = unsigned_compact({"alg": "RS256"}, good_claims(issuer, **{AGENT_CLAIM: OTHER_AGENT}))
    token = ".".join((header, forged.split(".")[1], signature))
    err = failure(settings, bearer(token))
    assert_invalid_token(err, "signature verification failed", "signature verification failed")


def test_algorithm_outside_discovery_list_is_refused(issuer: OidcIssuer) -> None:
    issuer.jwk_alg = None  # the key itself does not pin an algorithm
    settings = AuthSettings(audience=AUDIENCE, agent_claim=AGENT_CLAIM, issuer_base_url=issuer.issuer)
    err = failure(settings, bearer(issuer.token(good_claims(issuer), alg="PS256")))
    assert_invalid_token(err, 'unsupported algorithm "PS256"', "unsupported algorithm 'PS256'")


def test_algorithm_in_discovery_list_is_accepted() -> None:
    with OidcIssuer(algs=["RS256", "PS256"]) as issuer:
        issuer.jwk_alg = None
        settings = AuthSettings(audience=AUDIENCE, agent_claim=AGENT_CLAIM, issuer_base_url=issuer.issuer)
        assert run(agent(settings, bearer(issuer.token(good_claims(issuer), alg="PS256")))) == AGENT


def test_without_discovery_list_the_whole_allow_list_applies(issuer: OidcIssuer) -> None:
    issuer.omit_algs = True
    issuer.jwk_alg = None
    settings = AuthSettings(audience=AUDIENCE, agent_claim=AGENT_CLAIM, issuer_base_url=issuer.issuer)
    assert run(agent(settings, bearer(issuer.token(good_claims(issuer), alg="RS512")))) == AGENT


def test_key_that_declares_rs256_is_not_used_for_ps256() -> None:
    with OidcIssuer(algs=["RS256", "PS256"]) as issuer:  # JWK says "alg": "RS256"
        settings = AuthSettings(audience=AUDIENCE, agent_claim=AGENT_CLAIM, issuer_base_url=issuer.issuer)
        err = failure(settings, bearer(issuer.token(good_claims(issuer), alg="PS256")))
        desc = "no applicable key found in the JSON Web Key Set"
        assert_invalid_token(err, desc, desc)


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b.c",
        "a.b.c.d",
        "..",
        "eyJhbGciOiJSUzI1NiJ9.e30",
        "eyJhbGciOiJSUzI1NiJ9.!!!.AAAA",
        "W10.e30.AAAA",
    ],
)
def test_malformed_token(settings: AuthSettings, issuer: OidcIssuer, token: str) -> None:
    err = failure(settings, bearer(token))
    assert_invalid_token(err, "Invalid Compact JWS", "Invalid Compact JWS")


def test_header_without_alg(settings: AuthSettings, issuer: OidcIssuer) -> None:
    token = unsigned_compact({"typ": "JWT"}, good_claims(issuer)) + "AAAA"
    err = failure(settings, bearer(token))
    assert_invalid_token(
        err, 'missing or invalid "alg" header parameter', "missing or invalid 'alg' header parameter"
    )


def test_signed_payload_that_is_not_a_json_object(settings: AuthSettings, issuer: OidcIssuer) -> None:
    token = jwt.api_jws.encode(b"[1, 2]", issuer.key, algorithm="RS256", headers={"kid": issuer.kid})
    err = failure(settings, bearer(token))
    desc = "JWT Claims Set must be a top-level JSON object"
    assert_invalid_token(err, desc, desc)


# --------------------------------------------------------------------------- keys: rotation and fetching


def test_kid_rotation_refetches_at_most_once_per_30_seconds(issuer: OidcIssuer) -> None:
    settings = AuthSettings(audience=AUDIENCE, agent_claim=AGENT_CLAIM, issuer_base_url=issuer.issuer)
    clock = FakeClock()
    no_key = "no applicable key found in the JSON Web Key Set"

    async def scenario() -> None:
        verifier = TokenVerifier(settings, clock=clock)
        try:
            first = issuer.token(good_claims(issuer))
            assert await verifier.agent_for(bearer(first)) == AGENT
            assert issuer.requests[JWKS_PATH] == 1

            issuer.rotate(keep_old=False)  # key-2 replaces key-1
            assert await verifier.agent_for(bearer(issuer.token(good_claims(issuer)))) == AGENT
            assert issuer.requests[JWKS_PATH] == 2  # unknown kid: one refetch

            with pytest.raises(Unauthorized) as info:  # junk kid inside the cooldown: no refetch
                await verifier.agent_for(bearer(issuer.token(good_claims(issuer), headers={"kid": "junk"})))
            assert info.value.message == no_key
            issuer.rotate()  # key-3
            clock.now += 29
            with pytest.raises(Unauthorized) as info:
                await verifier.agent_for(bearer(issuer.token(good_claims(issuer))))
            assert info.value.message == no_key
            assert issuer.requests[JWKS_PATH] == 2

            clock.now += 1  # 30 s after the last refetch
            assert await verifier.agent_for(bearer(issuer.token(good_claims(issuer)))) == AGENT
            assert issuer.requests[JWKS_PATH] == 3

            # key-1 was withdrawn and is no longer in the cached set.
            with pytest.raises(Unauthorized) as info:
                await verifier.agent_for(bearer(first))
            assert info.value.message == no_key
            assert issuer.requests[JWKS_PATH] == 3
        finally:
            await verifier.aclose()

    run(scenario())


def test_cached_jwks_expires_so_withdrawn_keys_stop_working(issuer: OidcIssuer) -> None:
    settings = AuthSettings(audience=AUDIENCE, agent_claim=AGENT_CLAIM, issuer_base_url=issuer.issuer)
    clock = FakeClock()

    async def scenario() -> None:
        verifier = TokenVerifier(settings, clock=clock)
        try:
            old = bearer(issuer.token(good_claims(issuer)))
            assert await verifier.agent_for(old) == AGENT
            issuer.rotate(keep_old=False)
            clock.now += TokenVerifier.JWKS_MAX_AGE - 1
            assert await verifier.agent_for(old) == AGENT  # still cached
            assert issuer.requests[JWKS_PATH] == 1
            clock.now += 1
            with pytest.raises(Unauthorized) as info:
                await verifier.agent_for(old)
            assert info.value.message == "no applicable key found in the JSON Web Key Set"
            assert issuer.requests[JWKS_PATH] == 2
        finally:
            await verifier.aclose()

    run(scenario())


def test_issuer_unreachable() -> None:
    issuer = OidcIssuer()
    settings = AuthSettings(audience=AUDIENCE, agent_claim=AGENT_CLAIM, issuer_base_url=issuer.issuer)
    token = issuer.token(good_claims(issuer))
    issuer.stop()
    err = failure(settings, bearer(token))
    desc = "unable to fetch the signing keys"
    assert_invalid_token(err, desc, desc)


def test_jwks_server_error_then_recovery(settings: AuthSettings, issuer: OidcIssuer) -> None:
    desc = "unable to fetch the signing keys"
    header = bearer(issuer.token(good_claims(issuer)))

    async def scenario() -> None:
        verifier = TokenVerifier(settings)
        try:
            issuer.fail_jwks = True
            with pytest.raises(Unauthorized) as info:
                await verifier.agent_for(header)
            assert_invalid_token(info.value, desc, desc)
            issuer.fail_jwks = False  # failures are not cached
            assert await verifier.agent_for(header) == AGENT
            assert issuer.requests[JWKS_PATH] == 2
            assert issuer.requests[DISCOVERY_PATH] == 1
        finally:
            await verifier.aclose()

    run(scenario())


def test_local_mode_refuses_a_signature_by_another_local_key(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    settings = AuthSettings(audience=LOCAL_AUDIENCE, agent_claim=AGENT_CLAIM, local_key_dir=ours)
    kid = local_jwks(ours)["keys"][0]["kid"]
    their_key = serialization.load_pem_private_key(ensure_local_key(theirs).read_bytes(), password=None)
    claims = {"iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "exp": 4102444800, AGENT_CLAIM: AGENT}
    token = jwt.encode(claims, their_key, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]
    err = failure(settings, bearer(token))
    assert_invalid_token(err, "signature verification failed", "signature verification failed")


def test_settings_without_any_key_source_are_rejected() -> None:
    with pytest.raises(ValueError, match="no ISSUER_BASE_URL or JWKS_URI"):
        TokenVerifier(AuthSettings(audience=AUDIENCE, agent_claim=AGENT_CLAIM))
    with pytest.raises(ValueError, match="JWKS_URI requires ISSUER"):
        TokenVerifier(AuthSettings(audience=AUDIENCE, agent_claim=AGENT_CLAIM, jwks_uri="http://x/jwks"))


# --------------------------------------------------------------------------- the agent claim


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({CUSTOM_CLAIM: AGENT, DEV_CLAIM: OTHER_AGENT, AGENT_CLAIM: OTHER_AGENT}, AGENT),
        ({DEV_CLAIM: AGENT, AGENT_CLAIM: OTHER_AGENT}, AGENT),
        ({AGENT_CLAIM: AGENT}, AGENT),
        ({CUSTOM_CLAIM: "", DEV_CLAIM: None, AGENT_CLAIM: AGENT}, AGENT),  # falsy values are skipped
        ({CUSTOM_CLAIM: 0, DEV_CLAIM: AGENT}, AGENT),
    ],
)
def test_agent_claim_fallbacks(issuer: OidcIssuer, claims: dict[str, Any], expected: str) -> None:
    settings = AuthSettings(audience=AUDIENCE, agent_claim=CUSTOM_CLAIM, issuer_base_url=issuer.issuer)
    token = issuer.token(issuer.claims(None, agent_claim=CUSTOM_CLAIM, audience=AUDIENCE, **claims))
    assert run(agent(settings, bearer(token))) == expected


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {AGENT_CLAIM: ""},
        {AGENT_CLAIM: 42},
        {AGENT_CLAIM: {}},
        {AGENT_CLAIM: [AGENT]},
        {AGENT_CLAIM: 42, DEV_CLAIM: AGENT},  # the first truthy value decides, even when unusable
        {"https://store.rerum.io/agent": AGENT},
    ],
)
def test_missing_or_unusable_agent_is_403(
    settings: AuthSettings, issuer: OidcIssuer, claims: dict[str, Any]
) -> None:
    token = issuer.token(issuer.claims(None, agent_claim=AGENT_CLAIM, audience=AUDIENCE, **claims))
    err = failure(settings, bearer(token))
    assert type(err) is Forbidden
    assert err.status == 403
    assert err.message == FORBIDDEN


# --------------------------------------------------------------------------- the bot rule


@pytest.fixture
def bot_settings(issuer: OidcIssuer) -> AuthSettings:
    return AuthSettings(
        audience=AUDIENCE, agent_claim=AGENT_CLAIM, issuer_base_url=issuer.issuer, bot_agent=BOT
    )


def bot_claims(issuer: OidcIssuer, **extra: Any) -> dict[str, Any]:
    return issuer.claims(BOT, agent_claim=AGENT_CLAIM, audience=AUDIENCE, **extra)


def test_expired_but_correctly_signed_bot_token_is_accepted(
    bot_settings: AuthSettings, issuer: OidcIssuer
) -> None:
    token = issuer.token(bot_claims(issuer, expires_in=-86400))
    assert run(agent(bot_settings, bearer(token))) == BOT


def test_forged_unsigned_bot_token_is_refused(bot_settings: AuthSettings, issuer: OidcIssuer) -> None:
    # The reference accepted exactly this (spec §13.6).
    for expires_in in (3600, -3600):
        token = issuer.token(bot_claims(issuer, expires_in=expires_in), alg="none")
        err = failure(bot_settings, bearer(token))
        assert_invalid_token(err, 'unsupported algorithm "none"', "unsupported algorithm 'none'")


def test_expired_bot_token_must_still_pass_signature_issuer_and_audience(
    bot_settings: AuthSettings, issuer: OidcIssuer
) -> None:
    expired = bot_claims(issuer, expires_in=-60)
    cases = [
        (issuer.token(expired, key=new_rsa_key()), "signature verification failed"),
        (issuer.token({**expired, "aud": "https://other.example/"}), "Unexpected 'aud' value"),
        (issuer.token({**expired, "iss": "https://evil.example/"}), "Unexpected 'iss' value"),
        (issuer.token(expired, alg="HS256", key=public_pem(issuer.key)), 'unsupported algorithm "HS256"'),
    ]
    for token, message in cases:
        err = failure(bot_settings, bearer(token))
        assert err.status == 401
        assert err.message == message


def test_expired_non_bot_token_is_refused_even_with_bot_configured(
    bot_settings: AuthSettings, issuer: OidcIssuer
) -> None:
    err = failure(bot_settings, bearer(issuer.token(good_claims(issuer, expires_in=-60))))
    assert_invalid_token(err, '"exp" claim timestamp check failed', "'exp' claim timestamp check failed")


def test_bot_must_be_named_by_the_configured_agent_claim(
    bot_settings: AuthSettings, issuer: OidcIssuer
) -> None:
    # Like the reference's isBot, only RERUM_AGENT_CLAIM counts, not the fallback claim names.
    claims = issuer.claims(
        None, agent_claim=AGENT_CLAIM, audience=AUDIENCE, expires_in=-60, **{DEV_CLAIM: BOT}
    )
    err = failure(bot_settings, bearer(issuer.token(claims)))
    assert err.message == '"exp" claim timestamp check failed'


def test_expired_bot_token_is_refused_when_no_bot_is_configured(
    settings: AuthSettings, issuer: OidcIssuer
) -> None:
    err = failure(settings, bearer(issuer.token(bot_claims(issuer, expires_in=-60))))
    assert err.message == '"exp" claim timestamp check failed'


# --------------------------------------------------------------------------- the local key


def test_ensure_local_key_creates_a_private_pkcs8_rsa_key_once(tmp_path: Path) -> None:
    path = ensure_local_key(tmp_path)
    assert path == tmp_path / "auth" / "local-signing-key.pem"
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(pem, password=None)
    assert key.key_size == 2048  # type: ignore[union-attr]
    assert ensure_local_key(tmp_path) == path
    assert path.read_bytes() == pem
    assert os.listdir(path.parent) == ["local-signing-key.pem"]


def test_local_jwks_publishes_the_public_key_under_its_thumbprint(tmp_path: Path) -> None:
    jwks = local_jwks(tmp_path)
    assert len(jwks["keys"]) == 1
    jwk = jwks["keys"][0]
    assert {k: jwk[k] for k in ("kty", "alg", "use")} == {"kty": "RSA", "alg": "RS256", "use": "sig"}
    assert "d" not in jwk and "p" not in jwk  # no private members
    # RFC 7638 thumbprint, computed independently here.
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=")
    assert jwk["kid"] == thumbprint.decode()
    assert local_jwks(tmp_path) == jwks  # stable
    assert jwk["e"] == "AQAB"


def _race_for_key(data_dir: str, barrier: Any, results: Any) -> None:
    """Child process: start together with the others, then report the key that won."""
    barrier.wait()
    results.put(ensure_local_key(Path(data_dir)).read_bytes())


def test_concurrent_ensure_local_key_from_several_processes_yields_one_key(tmp_path: Path) -> None:
    # fork: the children need nothing but ensure_local_key, and spawning fresh interpreters that import
    # pytest costs seconds per child on a loaded machine.  No issuer thread is running in this test.
    ctx = multiprocessing.get_context("fork")
    workers = 6
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_race_for_key, args=(str(tmp_path), barrier, results)) for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    pems = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert len(set(pems)) == 1
    assert pems[0] == (tmp_path / "auth" / "local-signing-key.pem").read_bytes()
    assert os.listdir(tmp_path / "auth") == ["local-signing-key.pem"]  # temp files cleaned up


def test_mint_token_custom_claims_and_expiry(tmp_path: Path) -> None:
    token = mint_token(
        tmp_path, AGENT, agent_claim=CUSTOM_CLAIM, audience=AUDIENCE, issuer="urn:x", expires_in=60
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims[CUSTOM_CLAIM] == AGENT
    assert (claims["iss"], claims["aud"], claims["sub"]) == ("urn:x", AUDIENCE, AGENT)
    assert claims["exp"] - claims["iat"] == 60
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    settings = AuthSettings(
        audience=AUDIENCE, agent_claim=CUSTOM_CLAIM, issuer="urn:x", local_key_dir=tmp_path
    )
    assert run(agent(settings, bearer(token))) == AGENT

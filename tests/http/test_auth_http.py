"""The checkJwt chain over HTTP: missing, malformed, invalid and forged tokens; agents and ownership."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from rerum_server.auth.local_key import mint_token
from tests.conftest import AGENT_CLAIM, OWNER, STRANGER
from tests.support import database
from tests.support.api import create, key, uri
from tests.support.server import RunningServer
from tests.support.wire import (
    BAD_SCHEME,
    NO_TOKEN_CHALLENGE,
    TAIL_400,
    TAIL_404,
    compact_jws,
    foreign_rsa_key,
    invalid_token_challenge,
    local_claims,
    local_kid,
    local_public_pem,
    tail_401,
    tail_401_without_header,
    tail_403,
)

TEXT = "text/plain; charset=utf-8"
unchanged = pytest.mark.usefixtures("unchanged_database")


@pytest.fixture(scope="module")
def data_dir(server: RunningServer) -> Path:
    return server.data_dir.resolve()


@pytest.fixture(scope="module")
def owned(server: RunningServer, owner: dict[str, str]) -> dict[str, Any]:
    """An object of the owner's, made before any test's database fingerprint is taken."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        return create(http, owner, {"type": "Annotation", "owned": True})


def assert_invalid_token(response: httpx.Response, authorization: str, description: str) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == TEXT
    assert response.text == description + invalid_token_challenge(description) + tail_401(authorization)
    assert "www-authenticate" not in response.headers


# --- header shapes ---------------------------------------------------------------------------------------


@unchanged
def test_write_without_authorization_answers_401_with_the_no_header_challenge_and_tail(
    client: httpx.Client, server: RunningServer
) -> None:
    response = client.post("/v1/api/create", json={"a": 1})
    assert response.status_code == 401
    assert response.headers["content-type"] == TEXT
    assert response.text.startswith("Unauthorized")
    assert response.text == "Unauthorized" + NO_TOKEN_CHALLENGE + tail_401_without_header(
        server.env["RERUM_PREFIX"]
    )


@unchanged
@pytest.mark.parametrize("authorization", ["Bearer a b", "Bearer  x"])
def test_authorization_not_of_two_parts_answers_a_bare_400(client: httpx.Client, authorization: str) -> None:
    response = client.post("/v1/api/create", json={"a": 1}, headers={"Authorization": authorization})
    assert response.status_code == 400
    assert response.text == TAIL_400


@unchanged
def test_bare_bearer_word_is_not_the_bearer_format_and_answers_401(client: httpx.Client) -> None:
    # the library's 400, then the messenger's rule: the header does not start with "Bearer " → 401
    response = client.post("/v1/api/create", json={"a": 1}, headers={"Authorization": "Bearer"})
    assert response.status_code == 401
    assert response.text == BAD_SCHEME + tail_401("Bearer")


@unchanged
def test_authorization_with_another_scheme_answers_401_not_in_the_correct_format(
    client: httpx.Client,
) -> None:
    response = client.post("/v1/api/create", json={"a": 1}, headers={"Authorization": "Token abc"})
    assert response.status_code == 401
    assert response.text == BAD_SCHEME + tail_401("Token abc")


@unchanged
def test_bearer_that_is_not_a_jws_answers_401_invalid_token(client: httpx.Client) -> None:
    response = client.post("/v1/api/create", json={"a": 1}, headers={"Authorization": "Bearer abc"})
    assert_invalid_token(response, "Bearer abc", "Invalid Compact JWS")


@unchanged
def test_basic_authorization_on_a_public_404_read_answers_401(client: httpx.Client) -> None:
    response = client.get("/v1/id/nothing-here", headers={"Authorization": "Basic x"})
    assert response.status_code == 401
    assert response.text == "No RERUM object with id 'nothing-here'" + BAD_SCHEME + tail_401("Basic x")


@unchanged
def test_basic_authorization_on_a_successful_public_read_changes_nothing(
    client: httpx.Client, owned: dict[str, Any]
) -> None:
    response = client.get(f"/v1/id/{key(owned)}", headers={"Authorization": "Basic x"})
    assert response.status_code == 200
    assert response.json()["@id"] == uri(owned)


def test_lower_case_bearer_scheme_works_for_a_create(client: httpx.Client, owner: dict[str, str]) -> None:
    token = owner["Authorization"].removeprefix("Bearer ")
    response = client.post(
        "/v1/api/create", json={"cased": "bearer"}, headers={"Authorization": "bearer " + token}
    )
    assert response.status_code == 201
    assert response.json()["__rerum"]["generatedBy"] == OWNER


@unchanged
def test_lower_case_bearer_turns_a_later_error_into_401(client: httpx.Client, owner: dict[str, str]) -> None:
    authorization = "bearer " + owner["Authorization"].removeprefix("Bearer ")
    response = client.post("/v1/api/create", json={}, headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.text == (
        "Detected empty JSON object.  You must provide at least one property in the /create request body JSON."
        + BAD_SCHEME
        + tail_401(authorization)
    )


# --- invalid tokens --------------------------------------------------------------------------------------


def _expired(data_dir: Path) -> str:
    return mint_token(data_dir, OWNER, agent_claim=AGENT_CLAIM, expires_in=-3600)


def _wrong_audience(data_dir: Path) -> str:
    return mint_token(data_dir, OWNER, agent_claim=AGENT_CLAIM, audience="urn:somebody-else")


def _wrong_issuer(data_dir: Path) -> str:
    return mint_token(data_dir, OWNER, agent_claim=AGENT_CLAIM, issuer="https://issuer.example.org/")


def _unsigned(data_dir: Path) -> str:
    return compact_jws({"alg": "none", "typ": "JWT"}, local_claims(OWNER, AGENT_CLAIM))


def _hs256_with_public_key(data_dir: Path) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": local_kid(data_dir)}
    return compact_jws(header, local_claims(OWNER, AGENT_CLAIM), hmac_secret=local_public_pem(data_dir))


def _other_rsa_key(data_dir: Path) -> str:
    return jwt.encode(local_claims(OWNER, AGENT_CLAIM), foreign_rsa_key(), algorithm="RS256",
                      headers={"kid": local_kid(data_dir)})  # fmt: skip


def _unknown_kid(data_dir: Path) -> str:
    return jwt.encode(local_claims(OWNER, AGENT_CLAIM), foreign_rsa_key(), algorithm="RS256",
                      headers={"kid": "not-our-key"})  # fmt: skip


def _tampered_payload(data_dir: Path) -> str:
    header, _, signature = mint_token(data_dir, STRANGER, agent_claim=AGENT_CLAIM).split(".")
    forged = compact_jws({"alg": "RS256"}, local_claims(OWNER, AGENT_CLAIM)).split(".")[1]
    return f"{header}.{forged}.{signature}"


@unchanged
@pytest.mark.parametrize(
    ("make_token", "description"),
    [
        (_expired, '"exp" claim timestamp check failed'),
        (_wrong_audience, "Unexpected 'aud' value"),
        (_wrong_issuer, "Unexpected 'iss' value"),
        (_unsigned, 'unsupported algorithm "none"'),
        (_hs256_with_public_key, 'unsupported algorithm "HS256"'),
        (_other_rsa_key, "signature verification failed"),
        (_unknown_kid, "no applicable key found in the JSON Web Key Set"),
        (_tampered_payload, "signature verification failed"),
    ],
    ids=["expired", "wrong audience", "wrong issuer", "alg none", "HS256 with the public key", "other RSA key",
         "unknown kid", "tampered payload"],
)  # fmt: skip
def test_invalid_token_answers_401_invalid_token(
    client: httpx.Client, data_dir: Path, make_token: Callable[[Path], str], description: str
) -> None:
    authorization = "Bearer " + make_token(data_dir)
    response = client.post("/v1/api/create", json={"a": 1}, headers={"Authorization": authorization})
    assert_invalid_token(response, authorization, description)
    assert 'error="invalid_token"' in response.text


@unchanged
def test_token_without_an_agent_claim_answers_403(client: httpx.Client, data_dir: Path) -> None:
    authorization = "Bearer " + mint_token(
        data_dir, OWNER, agent_claim="http://example.org/not-the-agent-claim"
    )
    response = client.post("/v1/api/create", json={"a": 1}, headers={"Authorization": authorization})
    assert response.status_code == 403
    assert response.text == (
        "Could not get agent from req.user.  Have you registered with RERUM?" + tail_403(authorization)
    )


def test_token_with_the_devstore_agent_claim_is_accepted(client: httpx.Client, data_dir: Path) -> None:
    token = mint_token(data_dir, STRANGER, agent_claim="http://devstore.rerum.io/v1/agent")
    created = create(client, {"Authorization": "Bearer " + token}, {"claim": "devstore"})
    assert created["__rerum"]["generatedBy"] == STRANGER


# --- ownership -------------------------------------------------------------------------------------------


@unchanged
def test_other_agent_cannot_overwrite_the_owners_object(
    client: httpx.Client, stranger: dict[str, str], owned: dict[str, Any]
) -> None:
    response = client.put("/v1/api/overwrite", json={"@id": uri(owned), "owned": False}, headers=stranger)
    assert response.status_code == 401
    assert response.text == (
        "You are not the generating agent for this object. You cannot overwrite it. Fork with /update to make "
        "changes. " + tail_401(stranger["Authorization"])
    )


@unchanged
def test_other_agent_cannot_delete_the_owners_object(
    client: httpx.Client, stranger: dict[str, str], owned: dict[str, Any]
) -> None:
    response = client.delete(f"/v1/api/delete/{key(owned)}", headers=stranger)
    assert response.status_code == 401
    assert response.text == (
        "You are not the generating agent for this object and so are not authorized to delete it. "
        + tail_401(stranger["Authorization"])
    )


@unchanged
def test_other_agent_cannot_release_the_owners_object(
    client: httpx.Client, stranger: dict[str, str], owned: dict[str, Any]
) -> None:
    response = client.patch(f"/v1/api/release/{key(owned)}", headers=stranger)
    assert response.status_code == 401
    assert response.text == (
        "You are not the generating agent for this object. You cannot release it. "
        + tail_401(stranger["Authorization"])
    )


@unchanged
def test_owner_object_is_untouched_after_the_strangers_attempts(
    client: httpx.Client, stranger: dict[str, str], owned: dict[str, Any]
) -> None:
    client.delete(f"/v1/api/delete/{key(owned)}", headers=stranger)
    read = client.get(f"/v1/id/{key(owned)}")
    assert read.status_code == 200
    assert read.json()["owned"] is True
    assert read.json()["__rerum"]["isReleased"] == ""


@unchanged
def test_missing_object_delete_by_token_holder_answers_404(
    client: httpx.Client, stranger: dict[str, str]
) -> None:
    response = client.delete("/v1/api/delete/ffffffffffffffffffffffff", headers=stranger)
    assert response.status_code == 404
    assert response.text == "No object with this id could be found in RERUM.  Cannot delete." + TAIL_404


# --- BOT_AGENT -------------------------------------------------------------------------------------------

BOT = "https://store.rerum.io/v1/id/bot00000000000000000000003"


@pytest.fixture(scope="module")
def bot_server(server: RunningServer, test_database: database.DatabaseServer) -> Iterator[RunningServer]:
    running = RunningServer(workers=1, data_dir=server.data_dir.parent / "bot",
                            database_url=test_database.new_database(),
                            env={"BOT_AGENT": BOT, "RERUM_AGENT_CLAIM": AGENT_CLAIM})  # fmt: skip
    yield running
    running.stop()


def _bot_post(bot_server: RunningServer, token: str) -> httpx.Response:
    return httpx.post(bot_server.url + "/v1/api/create", json={"by": "bot"},
                      headers={"Authorization": "Bearer " + token}, timeout=30)  # fmt: skip


def test_bot_may_use_its_expired_but_correctly_signed_token(bot_server: RunningServer) -> None:
    token = mint_token(bot_server.data_dir.resolve(), BOT, agent_claim=AGENT_CLAIM, expires_in=-3600)
    response = _bot_post(bot_server, token)
    assert response.status_code == 201
    assert response.json()["__rerum"]["generatedBy"] == BOT


def test_expired_token_of_another_agent_is_refused_on_a_bot_server(bot_server: RunningServer) -> None:
    token = mint_token(bot_server.data_dir.resolve(), OWNER, agent_claim=AGENT_CLAIM, expires_in=-3600)
    response = _bot_post(bot_server, token)
    assert_invalid_token(response, "Bearer " + token, '"exp" claim timestamp check failed')


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_forged_bot_token_is_refused(bot_server: RunningServer, alg: str) -> None:
    data_dir = bot_server.data_dir.resolve()
    claims = local_claims(BOT, AGENT_CLAIM, exp=int(time.time()) - 3600)
    secret = local_public_pem(data_dir) if alg == "HS256" else None
    token = compact_jws({"alg": alg, "typ": "JWT", "kid": local_kid(data_dir)}, claims, hmac_secret=secret)
    response = _bot_post(bot_server, token)
    assert_invalid_token(response, "Bearer " + token, f'unsupported algorithm "{alg}"')


def test_bot_token_signed_by_another_key_is_refused(bot_server: RunningServer) -> None:
    claims = local_claims(BOT, AGENT_CLAIM, exp=int(time.time()) - 3600)
    token = jwt.encode(claims, foreign_rsa_key(), algorithm="RS256",
                       headers={"kid": local_kid(bot_server.data_dir.resolve())})  # fmt: skip
    response = _bot_post(bot_server, token)
    assert_invalid_token(response, "Bearer " + token, "signature verification failed")

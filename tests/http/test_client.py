"""The /client/* token helpers over HTTP, against a real local OIDC issuer the tests start (spec 10.2)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import AGENT_CLAIM, OWNER
from tests.support.database import DatabaseServer
from tests.support.oidc_issuer import DISCOVERY_PATH, SUCCESS_REPLY, OidcIssuer
from tests.support.server import RunningServer
from tests.support.trees import TAIL_400

AUDIENCE = "urn:rerum:client-test api"
CLIENT_ID = "rerum-client-id"
CLIENT_SECRET = "s3cret-never-logged"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=utf-8"
VERIFIED = "The token was verified by Auth0"
NOT_CONFIGURED = (
    "The /client token helpers are not available: this server has no OIDC issuer configured "
    "(set ISSUER_BASE_URL and CLIENT_ID, and CLIENT_SECRET for a confidential client)."
)
ACCESS_PATHS = ["/client/request-new-access-token", "/v1/api/accessToken"]
REFRESH_PATHS = ["/client/request-new-refresh-token", "/v1/api/refreshToken"]


@pytest.fixture(scope="module")
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as running:
        yield running


@pytest.fixture(scope="module")
def oidc_server(
    server: RunningServer, test_database: DatabaseServer, issuer: OidcIssuer
) -> Iterator[RunningServer]:
    env = {
        "ISSUER_BASE_URL": issuer.base_url,
        "AUDIENCE": AUDIENCE,
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "RERUM_AGENT_CLAIM": AGENT_CLAIM,
    }
    running = RunningServer(
        workers=1,
        data_dir=server.data_dir.parent / "oidc",
        database_url=test_database.new_database(),
        env=env,
    )
    yield running
    running.stop()


@pytest.fixture
def http(oidc_server: RunningServer, issuer: OidcIssuer) -> Iterator[httpx.Client]:
    issuer.token_reply = (200, SUCCESS_REPLY)
    issuer.token_delay = 0.0
    with httpx.Client(base_url=oidc_server.url, timeout=30) as client:
        yield client
    issuer.token_reply = (200, SUCCESS_REPLY)


def _encoded(text: str) -> str:
    """encodeURIComponent for the characters these values hold (written out, not via urllib)."""
    return text.replace("%", "%25").replace(":", "%3A").replace("/", "%2F").replace(" ", "%20")


# --- register ------------------------------------------------------------------------------------------


def test_register_answers_the_issuers_authorize_url_as_html(
    http: httpx.Client, issuer: OidcIssuer, oidc_server: RunningServer
) -> None:
    response = http.get("/client/register")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    prefix = oidc_server.env["RERUM_PREFIX"]
    assert response.text == (
        f"{issuer.base_url}/authorize?audience=urn%3Arerum%3Aclient-test%20api&scope=offline_access"
        f"&response_type=code&client_id={CLIENT_ID}&redirect_uri={_encoded(prefix)}&state=register"
    )


# --- token proxies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ACCESS_PATHS)
def test_access_token_request_sends_a_refresh_grant_and_returns_the_issuers_json(
    http: httpx.Client, issuer: OidcIssuer, path: str
) -> None:
    issuer.token_reply = (200, b'{"access_token":"new-at","expires_in":86400,"token_type":"Bearer"}')
    response = http.post(path, json={"refresh_token": "refresh-1"})
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert response.content == b'{"access_token":"new-at","expires_in":86400,"token_type":"Bearer"}'
    sent = issuer.token_requests[-1]
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.form == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-1",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }


@pytest.mark.parametrize("path", REFRESH_PATHS)
def test_refresh_token_request_exchanges_the_code_and_returns_the_issuers_json(
    http: httpx.Client, issuer: OidcIssuer, oidc_server: RunningServer, path: str
) -> None:
    response = http.post(path, json={"authorization_code": "code-9"})
    assert response.status_code == 200
    assert response.json() == SUCCESS_REPLY
    assert issuer.token_requests[-1].form == {
        "grant_type": "authorization_code",
        "code": "code-9",
        "redirect_uri": oidc_server.env["RERUM_PREFIX"],
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }


@pytest.mark.parametrize(
    ("reply", "status", "text"),
    [
        ((403, {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}), 403,
         "Unknown or invalid refresh token."),
        ((401, {"error": "invalid_client"}), 401, "invalid_client"),
        ((400, {"error": "invalid_request", "error_description": "Missing code"}), 400, "Missing code"),
    ],
)  # fmt: skip
def test_an_oauth_error_passes_its_status_and_description_through(
    http: httpx.Client, issuer: OidcIssuer, reply: tuple[int, Any], status: int, text: str
) -> None:
    issuer.token_reply = reply
    for path in (ACCESS_PATHS[0], REFRESH_PATHS[1]):
        body = {"refresh_token": "x"} if "ccess" in path else {"authorization_code": "x"}
        response = http.post(path, json=body)
        assert response.status_code == status
        assert response.headers["content-type"] == TEXT
        assert response.text == text


@pytest.mark.parametrize(
    "reply",
    [
        (500, {"error": "server_error", "error_description": "boom"}),
        (503, b"maintenance"),
        (404, b"<html>not here</html>"),
        (200, b"not json"),
        (200, b'["a list"]'),
        (0, None),  # the issuer hangs up without answering
    ],
)
def test_no_usable_answer_from_the_issuer_is_a_502(
    http: httpx.Client, issuer: OidcIssuer, reply: tuple[int, Any]
) -> None:
    issuer.token_reply = reply
    response = http.post(ACCESS_PATHS[0], json={"refresh_token": "x"})
    assert response.status_code == 502
    assert response.headers["content-type"] == TEXT
    assert response.text.startswith("The OIDC issuer ")


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {},
        {"json": {}},
        {"json": {"refresh_token": ""}},
        {"json": {"refresh_token": 5}},
        {"json": ["refresh_token"]},
        {"content": "refresh-1", "headers": {"Content-Type": "text/plain"}},
    ],
)
def test_a_missing_refresh_token_is_a_400_and_nothing_is_sent(
    http: httpx.Client, issuer: OidcIssuer, request_kwargs: dict[str, Any]
) -> None:
    before = len(issuer.token_requests)
    response = http.post(ACCESS_PATHS[0], **request_kwargs)
    assert response.status_code == 400
    assert response.text == 'The body must be JSON like {"refresh_token":"..."}.' + TAIL_400
    assert len(issuer.token_requests) == before


def test_a_missing_authorization_code_is_a_400(http: httpx.Client) -> None:
    response = http.post(REFRESH_PATHS[0], json={"refresh_token": "wrong field"})
    assert response.status_code == 400
    assert response.text == 'The body must be JSON like {"authorization_code":"..."}.' + TAIL_400


def test_discovery_is_fetched_once_and_the_secret_never_logged(
    http: httpx.Client, issuer: OidcIssuer, oidc_server: RunningServer
) -> None:
    for _ in range(5):
        assert http.post(ACCESS_PATHS[0], json={"refresh_token": "again"}).status_code == 200
        assert http.get("/client/register").status_code == 200
    # one worker: one fetch for the token helpers, at most one more for the token verifier
    assert issuer.requests[DISCOVERY_PATH] <= 2
    assert CLIENT_SECRET not in oidc_server.log()


# --- verify ----------------------------------------------------------------------------------------------


def test_verify_answers_200_for_a_token_of_the_issuer(http: httpx.Client, issuer: OidcIssuer) -> None:
    token = issuer.token(issuer.claims(OWNER, agent_claim=AGENT_CLAIM, audience=AUDIENCE))
    response = http.get("/client/verify", headers={"Authorization": "Bearer " + token})
    assert response.status_code == 200
    assert response.headers["content-type"] == TEXT
    assert response.text == VERIFIED
    head = http.head("/client/verify", headers={"Authorization": "Bearer " + token})
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(VERIFIED))


def test_verify_needs_no_agent_claim(http: httpx.Client, issuer: OidcIssuer) -> None:
    token = issuer.token(issuer.claims(None, agent_claim=AGENT_CLAIM, audience=AUDIENCE))
    response = http.get("/client/verify", headers={"Authorization": "Bearer " + token})
    assert response.status_code == 200
    assert response.text == VERIFIED


def test_verify_refuses_missing_and_invalid_tokens(http: httpx.Client, issuer: OidcIssuer) -> None:
    assert http.get("/client/verify").status_code == 401
    wrong_audience = issuer.token(issuer.claims(OWNER, agent_claim=AGENT_CLAIM, audience="urn:other"))
    response = http.get("/client/verify", headers={"Authorization": "Bearer " + wrong_audience})
    assert response.status_code == 401
    assert response.text.startswith("Unexpected 'aud' value")


# --- methods and the server without an issuer ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/client/register"),
        ("GET", "/client/request-new-access-token"),
        ("GET", "/client/request-new-refresh-token"),
        ("GET", "/v1/api/accessToken"),
        ("PUT", "/v1/api/refreshToken"),
        ("POST", "/client/verify"),
    ],
)
def test_other_methods_answer_405(http: httpx.Client, method: str, path: str) -> None:
    assert http.request(method, path).status_code == 405


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/client/register", None),
        ("POST", ACCESS_PATHS[0], {"refresh_token": "x"}),
        ("POST", ACCESS_PATHS[1], None),
        ("POST", REFRESH_PATHS[0], {"authorization_code": "x"}),
        ("POST", REFRESH_PATHS[1], {}),
    ],
)
def test_without_an_issuer_the_helpers_answer_501(
    client: httpx.Client, method: str, path: str, body: Any
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == 501
    assert response.headers["content-type"] == TEXT
    assert response.text == NOT_CONFIGURED

"""A real, tiny OIDC issuer for tests: discovery document, JWKS and token endpoint over HTTP on 127.0.0.1.

It runs ``http.server.ThreadingHTTPServer`` in a daemon thread on a free port, so the verifier under
test talks real HTTP (no mocked transport).  It holds RSA private keys, can rotate them, can be told to
fail, counts the requests it serves, and signs tokens with :meth:`OidcIssuer.token`.  Its token endpoint
(``POST /oauth/token``) records each request (:attr:`OidcIssuer.token_requests`) and answers
:attr:`OidcIssuer.token_reply` (success JSON by default, or whatever status and body a test sets).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/jwks.json"
AUTHORIZE_PATH = "/authorize"
TOKEN_PATH = "/oauth/token"

_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def new_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def pooled_key(generation: int) -> rsa.RSAPrivateKey:
    """The issuers' key for ``generation``, generated once per process.

    RSA generation costs up to a second on a busy machine; issuers in different tests never meet, so
    they may share keys, while the generations of one issuer stay distinct.
    """
    return new_rsa_key()


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    """The SubjectPublicKeyInfo PEM of ``key`` (what an attacker can download and abuse as HMAC secret)."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_jwk(key: rsa.RSAPrivateKey, kid: str, alg: str | None = "RS256") -> dict[str, Any]:
    """The public JWK of ``key`` under ``kid``, declaring ``alg`` unless it is None."""
    numbers = key.public_key().public_numbers()
    jwk: dict[str, Any] = {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "n": _b64url_uint(numbers.n),
        "e": _b64url_uint(numbers.e),
    }
    if alg is not None:
        jwk["alg"] = alg
    return jwk


def unsigned_compact(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None = None) -> str:
    """Build a compact JWS by hand: HMAC-signed with ``secret`` per ``header["alg"]``, else unsigned.

    PyJWT refuses to produce these (it will not use a PEM as an HMAC secret), but an attacker will.
    """
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = b""
    if secret is not None:
        signature = hmac.new(secret, signing_input.encode(), _HMAC_HASHES[header["alg"]]).digest()
    return f"{signing_input}.{_b64url(signature)}"


@dataclass(frozen=True)
class TokenRequest:
    """One request the token endpoint received: its headers, raw body and the decoded form fields."""

    headers: dict[str, str]
    body: bytes
    form: dict[str, str]


SUCCESS_REPLY: dict[str, Any] = {
    "access_token": "issued-access-token",
    "refresh_token": "issued-refresh-token",
    "id_token": "issued-id-token",
    "scope": "offline_access",
    "expires_in": 86400,
    "token_type": "Bearer",
}


class OidcIssuer:
    """A running issuer at :attr:`base_url`; use as a context manager or call :meth:`stop`."""

    def __init__(self, *, algs: list[str] | None = None) -> None:
        """Start serving with one key (kid ``key-1``).

        ``algs`` is the discovery document's ``id_token_signing_alg_values_supported`` (default
        ``["RS256"]``, like Auth0); ``[]`` would advertise nothing and ``None`` is the default.
        """
        self.algs: list[str] | None = ["RS256"] if algs is None else algs
        self.omit_algs = False  # True: leave id_token_signing_alg_values_supported out entirely
        self.fail_jwks = False  # True: /jwks.json answers 500
        self.fail_discovery = False  # True: the discovery document answers 500
        self.jwk_alg: str | None = "RS256"  # the `alg` each published JWK declares (None: no `alg`)
        self.requests: Counter[str] = Counter()
        self.token_requests: list[TokenRequest] = []
        # (status, body) of the token endpoint's next answers; bytes are sent as they are, else as JSON;
        # status 0 closes the connection without an answer.
        self.token_reply: tuple[int, Any] = (200, SUCCESS_REPLY)
        self.token_delay = 0.0  # seconds the token endpoint waits before answering
        self._lock = threading.Lock()
        self._generation = 1
        self.kid = "key-1"
        self.key = pooled_key(1)
        # Keys published in the JWKS: kid -> private key (the private half only signs test tokens).
        self.published: dict[str, rsa.RSAPrivateKey] = {self.kid: self.key}

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.issuer = self.base_url + "/"  # Auth0 style: the issuer ends with a slash
        self.jwks_uri = self.base_url + JWKS_PATH
        self.authorization_endpoint = self.base_url + AUTHORIZE_PATH
        self.token_endpoint = self.base_url + TOKEN_PATH
        # A short poll interval keeps stop() (and so every test's teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="oidc-issuer", daemon=True
        )
        self._thread.start()

    # -------------------------------------------------------------- control

    def rotate(self, *, keep_old: bool = True) -> str:
        """Make a new key current (publishing it); drop the old ones unless ``keep_old``. Returns its kid."""
        with self._lock:
            self._generation += 1
            kid = f"key-{self._generation}"
            key = pooled_key(self._generation)
            if not keep_old:
                self.published.clear()
            self.published[kid] = key
            self.kid, self.key = kid, key
        return kid

    def stop(self) -> None:
        """Stop serving and free the port (connections are then refused)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OidcIssuer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- documents

    def discovery(self) -> dict[str, Any]:
        """The discovery document currently served."""
        doc: dict[str, Any] = {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
        }
        if not self.omit_algs:
            doc["id_token_signing_alg_values_supported"] = self.algs
        return doc

    def jwks(self) -> dict[str, Any]:
        """The JWKS currently served (public halves of the published keys)."""
        with self._lock:
            return {"keys": [public_jwk(key, kid, self.jwk_alg) for kid, key in self.published.items()]}

    # -------------------------------------------------------------- tokens

    def claims(
        self, agent: str | None, *, agent_claim: str, audience: str, expires_in: int = 3600, **extra: Any
    ) -> dict[str, Any]:
        """Typical access-token claims from this issuer; ``extra`` overrides or adds (None removes)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "sub": "auth0|tester",
            "iat": now,
            "exp": now + expires_in,
        }
        if agent is not None:
            claims[agent_claim] = agent
        for name, value in extra.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def token(
        self,
        claims: dict[str, Any],
        *,
        alg: str = "RS256",
        key: Any = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """Sign ``claims`` with ``key`` (default: the current key, with its kid in the header).

        ``alg="none"`` gives an unsigned token; for ``HS*`` ``key`` is the raw secret (bytes).
        ``headers`` are merged over the defaults; a ``None`` value removes a header (e.g. ``kid``).
        """
        hdr: dict[str, Any] = {"alg": alg, "typ": "JWT", "kid": self.kid}
        hdr.update(headers or {})
        hdr = {name: value for name, value in hdr.items() if value is not None}
        if alg == "none" or alg in _HMAC_HASHES:
            return unsigned_compact(hdr, claims, None if alg == "none" else key)
        signing_key = self.key if key is None else key
        extra = {name: value for name, value in hdr.items() if name != "alg"}
        return jwt.encode(claims, signing_key, algorithm=alg, headers=extra)

    # -------------------------------------------------------------- HTTP

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with issuer._lock:
                    issuer.requests[path] += 1
                if path == DISCOVERY_PATH and issuer.fail_discovery:
                    self._send(500, {"error": "server_error"})
                elif path == DISCOVERY_PATH:
                    self._send(200, issuer.discovery())
                elif path == JWKS_PATH and not issuer.fail_jwks:
                    self._send(200, issuer.jwks())
                elif path == JWKS_PATH:
                    self._send(500, {"error": "server_error"})
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with issuer._lock:
                    issuer.requests[path] += 1
                if path != TOKEN_PATH:
                    self._send(404, {"error": "not_found"})
                    return
                form = {
                    name: values[0]
                    for name, values in parse_qs(body.decode(), keep_blank_values=True).items()
                }
                headers = {name.lower(): value for name, value in self.headers.items()}
                with issuer._lock:
                    issuer.token_requests.append(TokenRequest(headers, body, form))
                    status, reply = issuer.token_reply
                    delay = issuer.token_delay
                if delay:
                    time.sleep(delay)  # a slow issuer, for timeout tests
                if status == 0:
                    self.close_connection = True  # hang up without answering: a network failure
                    return
                self._send(status, reply)

            def _send(self, status: int, body: Any) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return Handler

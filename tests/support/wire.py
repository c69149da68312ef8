"""Helpers for the wire tests: RERUM's literal texts (spec 12), hand-made tokens, extra servers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from rerum_server.auth.local_key import LOCAL_AUDIENCE, LOCAL_ISSUER, local_jwks, local_key_path
from tests.support.server import RunningServer

# --- literal wire texts, copied from the spec (not imported from the code under test) -------------------

TAIL_400 = (
    "\nThe body of your request was invalid. Please make sure it is a valid content-type and that the body "
    "matches that type.\nIf the body is JSON, make sure it is valid JSON."
)
TAIL_404 = "\nThe requested web page or resource could not be found."
BAD_SCHEME = (
    'Your token is not in the correct format.  It should be a Bearer token formatted like: "Bearer <token>"'
)
DPOP_ALGS = 'DPoP algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES256K ES384 ES512 EdDSA"'
NO_TOKEN_CHALLENGE = f'Bearer realm="api", {DPOP_ALGS}'
DOWN_BODY = {
    "message": "RERUM v1 is down for updates or maintenance at this time.  We apologize for the inconvenience."
    "  Try again later."
}
READ_ONLY_BODY = {
    "message": "RERUM v1 is read only at this time.  We apologize for the inconvenience.  Try again later."
}
JSON_UTF8 = "application/json; charset=utf-8"
PREFLIGHT = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET,OPTIONS,HEAD,PUT,PATCH,DELETE,POST",
    "access-control-allow-headers": (
        "Content-Type,Content-Length,Allow,Authorization,Location,ETag,Connection,Keep-Alive,Date,Cache-Control,"
        "Last-Modified,Link,X-HTTP-Method-Override,Origin,Referrer,User-Agent,"
        "Slug,If-Overwritten-Version,If-None-Match"
    ),
    "access-control-max-age": "600",
    "access-control-expose-headers": "*",
}


def tail_401(authorization: str) -> str:
    """The 401 tail when the request had an Authorization header (first 15 characters echoed)."""
    return (
        "\nThe token provided is Unauthorized.  Please check that it is your token and that it is not expired. "
        f"\nToken: {authorization[:15]}... "
    )


def tail_401_without_header(rerum_prefix: str) -> str:
    return (
        '\nThe request does not contain an "Authorization" header and so is Unauthorized. Please include a '
        'token with your requests\nlike "Authorization: Bearer <token>". Make sure you have registered at '
        f"{rerum_prefix}."
    )


def tail_403(authorization: str) -> str:
    return f"\nYou are Forbidden from performing this action.  Check your privileges.\nToken: {authorization[:15]}..."


def invalid_token_challenge(description: str) -> str:
    """The ``invalid_token`` challenge appended to the message (double quotes become single quotes)."""
    quoted = description.replace('"', "'")
    return f'Bearer realm="api", error="invalid_token", error_description="{quoted}", {DPOP_ALGS}'


# --- tokens --------------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_jws(header: dict[str, Any], claims: dict[str, Any], *, hmac_secret: bytes | None = None) -> str:
    """A compact JWS built by hand: HS256 over ``hmac_secret``, or unsigned (empty signature)."""
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = (
        b"" if hmac_secret is None else hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{_b64url(signature)}"


def local_claims(agent: str, agent_claim: str, **overrides: Any) -> dict[str, Any]:
    """Claims a local-mode server accepts (issuer, audience, one hour of validity) for ``agent``."""
    now = int(time.time())
    claims = {"iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "iat": now, "exp": now + 3600, "sub": agent,
              agent_claim: agent}  # fmt: skip
    return claims | overrides


def local_kid(data_dir: Path) -> str:
    """The ``kid`` of a server's local signing key."""
    return local_jwks(data_dir)["keys"][0]["kid"]


def local_public_pem(data_dir: Path) -> bytes:
    """The public half of a server's local signing key, as PEM (public knowledge in a real deployment)."""
    key = serialization.load_pem_private_key(local_key_path(data_dir).read_bytes(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def foreign_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# --- extra servers -------------------------------------------------------------------------------------


class AnsweringServer(RunningServer):
    """A server that is ready once it answers HTTP at all (a DOWN server answers 503 to everything)."""

    def ready(self, status: int) -> bool:
        return True


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether process ``pid`` is ``ancestor`` or one of its descendants (Linux /proc)."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4: ppid (after the parenthesised name)
    return False

"""The embedded signing key used when no OIDC issuer is configured ("local mode").

A fresh install has no Auth0 tenant, yet writes still need a verified agent.  In local mode the server
keeps one RSA key under ``<data_dir>/auth/``, publishes its public half as a JWKS that the verifier
reads, and mints tokens with it (``rerum token`` style tooling and the tests).  Tokens minted here go
through exactly the same verification as tokens from a real issuer.

Everything in this module is blocking file I/O: call it at start-up or from a worker thread, not on
the event loop.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

LOCAL_ISSUER = "urn:rerum:local-issuer"
LOCAL_AUDIENCE = "urn:rerum:local-api"

_KEY_DIR = "auth"
_KEY_FILE = "local-signing-key.pem"


def local_key_path(data_dir: Path) -> Path:
    """Return where the local signing key lives (whether or not it exists yet)."""
    return Path(data_dir) / _KEY_DIR / _KEY_FILE


def ensure_local_key(data_dir: Path) -> Path:
    """Create ``<data_dir>/auth/local-signing-key.pem`` (RSA 2048, PKCS8 PEM, mode 0600) if absent.

    Safe when several processes (the workers of one server) call it at the same moment: each writes
    its candidate to a private temp file and hard-links it to the final name.  ``link`` fails if the
    name exists, so exactly one candidate wins and nobody ever sees a half-written key.
    Returns the key's path.
    """
    path = local_key_path(data_dir)
    if path.exists():
        return path
    # 0700: the directory only ever holds secrets.
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    # mkstemp creates the file with mode 0600 and a unique name in the same directory (same
    # filesystem, which os.link requires).
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".local-signing-key.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(pem)
            tmp.flush()
            os.fsync(tmp.fileno())
        with contextlib.suppress(FileExistsError):
            # Another process got there first: its key wins and ours is discarded.
            os.link(tmp_name, path)
    finally:
        os.unlink(tmp_name)
    return path


def _b64url_uint(value: int) -> str:
    """Encode an unsigned integer as the unpadded base64url of its big-endian bytes (RFC 7518 §6.3)."""
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _load_private_key(data_dir: Path) -> rsa.RSAPrivateKey:
    """Load (creating if needed) the local RSA private key."""
    pem = ensure_local_key(data_dir).read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{local_key_path(data_dir)} does not hold an RSA private key")
    return key


def _public_jwk(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """The public JWK of ``key`` with ``kid`` set to its RFC 7638 SHA-256 thumbprint."""
    numbers = key.public_key().public_numbers()
    members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    # RFC 7638: the required members, lexicographically ordered, no whitespace.  The thumbprint
    # only depends on the key, so the kid is stable across restarts and across workers.
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("ascii")
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode("ascii")
    return {**members, "kid": kid, "alg": "RS256", "use": "sig"}


def local_jwks(data_dir: Path) -> dict[str, Any]:
    """Return the JWKS (``{"keys": [<one RSA public JWK>]}``) of the local signing key.

    The key is created first if it does not exist yet.
    """
    return {"keys": [_public_jwk(_load_private_key(data_dir))]}


def mint_token(
    data_dir: Path,
    agent: str,
    *,
    agent_claim: str,
    audience: str = LOCAL_AUDIENCE,
    issuer: str = LOCAL_ISSUER,
    expires_in: int = 3600,
) -> str:
    """Sign an RS256 access token for ``agent`` with the local key.

    Claims: ``iss``, ``aud``, ``iat``, ``exp`` (``iat + expires_in``; negative values give an
    already-expired token), ``sub`` and ``{agent_claim: agent}``.  The header carries the key's ``kid``.
    """
    key = _load_private_key(data_dir)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + expires_in,
        "sub": agent,
        agent_claim: agent,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": _public_jwk(key)["kid"]})

"""Configuration: read once from the environment, validated, passed explicitly.

Every variable is documented in the README's configuration table; ``tests/unit/test_settings.py``
checks that the table and ``ENVIRONMENT`` agree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from rerum_server.versioning.metadata import Naming


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable."""


# name → (default, meaning); the README table is generated from the same facts.
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "DATABASE_URL": (
        "",
        "PostgreSQL DSN; empty: `rerum serve` starts an embedded PostgreSQL in the data dir",
    ),
    "RERUM_DATA_DIR": ("./rerum-data", "Embedded PostgreSQL data and the local signing key"),
    "HOST": ("127.0.0.1", "Address `rerum serve` binds (overridden by --host)"),
    "PORT": ("3001", "Port `rerum serve` binds (overridden by --port)"),
    "RERUM_ID_PREFIX": ("http://localhost:<PORT>/v1/id/", "`@id` = prefix + `_id`"),
    "RERUM_PREFIX": ("http://localhost:<PORT>/v1/", "Public base of the API, used in messages"),
    "RERUM_CONTEXT": ("<RERUM_PREFIX>context.json", "Value of `__rerum.@context`"),
    "RERUM_API_VERSION": ("1.1.0", "Value of `__rerum.APIversion`"),
    "RERUM_MAX_QUERY_LIMIT": ("500", "Cap of `limit`"),
    "RERUM_MAX_QUERY_SKIP": ("100000", "Cap of `skip`"),
    "RERUM_MAX_BULK_ITEMS": (
        "1000",
        "Most objects one bulkCreate/bulkUpdate may carry (more: 413); each adds a `Link` header line",
    ),
    "AUDIENCE": ("urn:rerum:local-api", "Required `aud` of bearer tokens"),
    "ISSUER_BASE_URL": ("", "OIDC issuer; its discovery document gives `issuer` and `jwks_uri`"),
    "ISSUER": ("", "Expected `iss` (defaults to the discovered issuer, or the local issuer)"),
    "JWKS_URI": ("", "JWKS of the issuer when there is no discovery"),
    "RERUM_AGENT_CLAIM": ("http://store.rerum.io/agent", "Claim holding the agent URI"),
    "BOT_AGENT": ("", "Agent whose correctly signed tokens are accepted after expiry"),
    "CLIENT_ID": ("", "OAuth client id of this server at the issuer, for the `/client/*` token helpers"),
    "CLIENT_SECRET": ("", "OAuth client secret sent with `CLIENT_ID` to the issuer's token endpoint"),
    "DOWN": ("false", "`true`: every request but OPTIONS answers 503 (maintenance)"),
    "READONLY": ("false", "`true`: every write answers 503"),
    "RERUM_WORKER_HEADER": ("true", "Send `X-Rerum-Worker: <host>/<pid>` on every response"),
    "RERUM_DB_POOL_SIZE": ("10", "PostgreSQL connections per worker"),
    "CACHE_ENABLED": ("true", "`false`: no Redis at all; every cacheable read answers `X-Cache: BYPASS`"),
    "CACHE_TTL": ("300000", "Lifetime of a cache entry, in milliseconds"),
    "CACHE_TTL_ID": ("<CACHE_TTL>", "Lifetime of a `/v1/id` entry, in milliseconds"),
    "CACHE_TTL_QUERY": ("<CACHE_TTL>", "Lifetime of a query entry (`/v1/api/query`, the GoG reads), in ms"),
    "CACHE_TTL_SEARCH": ("<CACHE_TTL>", "Lifetime of a `/v1/api/search` and `/search/phrase` entry, in ms"),
    "CACHE_TTL_HISTORY": ("<CACHE_TTL>", "Lifetime of a `/v1/history` and `/v1/since` entry, in ms"),
    "CACHE_MAX_ENTRY_BYTES": ("1048576", "Answers larger than this are not cached"),
    "CACHE_LOCAL_BYTES": (
        "33554432",
        "Memory per worker for its own copies of large answers (0: none); a hit on one sends no body",
    ),
    "CACHE_LOCAL_MIN_BYTES": ("16384", "Answers at least this large are kept in the workers' own copies"),
    "CACHE_FENCE_MS": ("10000", "Lifetime F of a write's fence; COMMIT must be acknowledged within F − 1 s"),
    "CACHE_SELECTIVE_QUERIES": (
        "true",
        "Invalidate queries by their equality conditions (else: by every write)",
    ),
    "CACHE_NAMESPACE": (
        "rerum",
        "Prefix of every cache key (deployments sharing one Redis use different ones)",
    ),
    "CACHE_ALLOW_ALLKEYS_EVICTION": (
        "false",
        "`true`: accept a Redis whose `maxmemory-policy` is `allkeys-*`",
    ),
    "REDIS_URL": ("", "`redis://`, `rediss://` (TLS) or `unix://` URL of the cache Redis; empty: see below"),
    "REDIS_HOST": ("", "Host of the cache Redis when `REDIS_URL` is unset"),
    "REDIS_PORT": ("6379", "Port with `REDIS_HOST`"),
    "REDIS_USERNAME": ("", "ACL user with `REDIS_HOST`"),
    "REDIS_PASSWORD": ("", "Password with `REDIS_HOST`"),
    "REDIS_TLS": ("false", "`true`: TLS with `REDIS_HOST`"),
    "REDIS_TIMEOUT_MS": ("250", "Connect and command timeout for Redis"),
    "RERUM_REDIS_MAXMEMORY": ("256mb", "`maxmemory` of the embedded Redis that `rerum serve` starts"),
    "RERUM_ADMIN_AGENTS": ("", "Space-separated agent URIs allowed to `POST /v1/api/cache/clear`"),
    "RERUM_ADMIN_ROLE_CLAIM": (
        "",
        "Claim listing roles; a token whose roles include `rerum-admin` is admin too",
    ),
    "RERUM_STATEMENT_TIMEOUT_MS": ("10000", "PostgreSQL statement timeout"),
    "LOG_FORMAT": (
        "text",
        "`text` or `json` (one JSON object a line, stable keys) for every log line on stderr",
    ),
    "LOG_LEVEL": ("info", "`debug`, `info`, `warning` or `error`; `warning` and above drop the access lines"),
    "METRICS_ENABLED": (
        "true",
        "Serve `GET /metrics` (Prometheus text format, unauthenticated); `false`: 404, requests not recorded",
    ),
}

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, ENVIRONMENT[name][0]).strip().lower()
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off", ""):
        return False
    raise SettingsError(f"{name} has value {raw!r}; expected true or false.")


def _int(env: Mapping[str, str], name: str, minimum: int = 0) -> int:
    raw = env.get(name, ENVIRONMENT[name][0]).strip()
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} has value {raw!r}; expected an integer.") from None
    if value < minimum:
        raise SettingsError(f"{name} has value {value}; expected at least {minimum}.")
    return value


def _int_or(env: Mapping[str, str], name: str, fallback: int, minimum: int) -> int:
    """An integer variable whose empty or absent value means ``fallback`` (another variable's value)."""
    return _int({name: env.get(name, "").strip() or str(fallback)}, name, minimum)


# The variable giving each read kind's entry TTL (the kinds are the cache client's endpoint names).
# GoG reads depend on the query stamps and are invalidated like queries, so they live as long.
READ_KIND_TTLS = {
    "id": "CACHE_TTL_ID",
    "query": "CACHE_TTL_QUERY",
    "gog": "CACHE_TTL_QUERY",
    "search": "CACHE_TTL_SEARCH",
    "phrase": "CACHE_TTL_SEARCH",
    "history": "CACHE_TTL_HISTORY",
    "since": "CACHE_TTL_HISTORY",
}


def _memory(env: Mapping[str, str], name: str) -> str:
    """A Redis memory size (``256mb``, ``1gb``, ``1048576``), checked here so that a typo stops start-up
    before anything runs instead of failing the embedded Redis after PostgreSQL started."""
    raw = env.get(name, "").strip() or ENVIRONMENT[name][0]
    if not re.fullmatch(r"\d+(b|kb?|mb?|gb?)?", raw, re.IGNORECASE):
        raise SettingsError(f"{name} has value {raw!r}; expected a size such as 256mb or 1gb.")
    return raw


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or ENVIRONMENT[name][0]
    if raw not in choices:
        raise SettingsError(f"{name} has value {raw!r}; expected one of {', '.join(choices)}.")
    return raw


def _text(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def redis_url(env: Mapping[str, str]) -> str:
    """``REDIS_URL``, or one built from the seed's ``REDIS_HOST``/``PORT``/``USERNAME``/``PASSWORD``/``TLS``."""
    url = _text(env, "REDIS_URL")
    if url is not None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://.")
        return url
    host = _text(env, "REDIS_HOST")
    if host is None:
        return ""
    port = _int(env, "REDIS_PORT", 1)
    username = quote(_text(env, "REDIS_USERNAME") or "", safe="")
    password = quote(_text(env, "REDIS_PASSWORD") or "", safe="")
    credentials = f"{username}:{password}@" if username or password else ""
    scheme = "rediss" if _bool(env, "REDIS_TLS") else "redis"
    return f"{scheme}://{credentials}{host}:{port}/0"


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs to know, resolved from the environment."""

    database_url: str
    data_dir: Path
    port: int
    naming: Naming
    rerum_prefix: str
    max_limit: int
    max_skip: int
    max_bulk_items: int
    audience: str
    issuer_base_url: str | None
    issuer: str | None
    jwks_uri: str | None
    agent_claim: str
    bot_agent: str | None
    client_id: str | None
    client_secret: str | None = field(repr=False)  # never in logs or tracebacks
    down: bool
    read_only: bool
    worker_header: bool
    pool_size: int
    statement_timeout_ms: int
    cache_enabled: bool
    cache_ttl_ms: int
    cache_entry_ttls_ms: Mapping[str, int]  # read kind → entry TTL
    cache_max_entry_bytes: int
    cache_local_bytes: int
    cache_local_min_bytes: int
    cache_fence_ms: int
    cache_selective_queries: bool
    allow_allkeys_eviction: bool
    cache_namespace: str
    redis_url: str
    redis_timeout_ms: int
    redis_maxmemory: str
    admin_agents: tuple[str, ...]
    admin_role_claim: str | None
    log_format: str = "text"
    log_level: str = "info"
    metrics_enabled: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the configuration; raises ``SettingsError`` naming the bad variable."""
        env = os.environ if env is None else env
        port = _int(env, "PORT", 1)
        rerum_prefix = _text(env, "RERUM_PREFIX") or f"http://localhost:{port}/v1/"
        id_prefix = _text(env, "RERUM_ID_PREFIX") or f"{rerum_prefix}id/"
        cache_ttl_ms = _int(env, "CACHE_TTL", 1000)
        return cls(
            database_url=_text(env, "DATABASE_URL") or "",
            data_dir=Path(_text(env, "RERUM_DATA_DIR") or ENVIRONMENT["RERUM_DATA_DIR"][0]),
            port=port,
            naming=Naming(
                id_prefix=id_prefix,
                context_url=_text(env, "RERUM_CONTEXT") or f"{rerum_prefix}context.json",
                api_version=_text(env, "RERUM_API_VERSION") or "1.1.0",
            ),
            rerum_prefix=rerum_prefix,
            max_limit=_int(env, "RERUM_MAX_QUERY_LIMIT", 1),
            max_skip=_int(env, "RERUM_MAX_QUERY_SKIP", 0),
            max_bulk_items=_int(env, "RERUM_MAX_BULK_ITEMS", 1),
            audience=_text(env, "AUDIENCE") or ENVIRONMENT["AUDIENCE"][0],
            issuer_base_url=_text(env, "ISSUER_BASE_URL"),
            issuer=_text(env, "ISSUER"),
            jwks_uri=_text(env, "JWKS_URI"),
            agent_claim=_text(env, "RERUM_AGENT_CLAIM") or ENVIRONMENT["RERUM_AGENT_CLAIM"][0],
            bot_agent=_text(env, "BOT_AGENT"),
            client_id=_text(env, "CLIENT_ID"),
            client_secret=_text(env, "CLIENT_SECRET"),
            down=_bool(env, "DOWN"),
            read_only=_bool(env, "READONLY"),
            worker_header=_bool(env, "RERUM_WORKER_HEADER"),
            pool_size=_int(env, "RERUM_DB_POOL_SIZE", 1),
            statement_timeout_ms=_int(env, "RERUM_STATEMENT_TIMEOUT_MS", 100),
            cache_enabled=_bool(env, "CACHE_ENABLED"),
            cache_ttl_ms=cache_ttl_ms,
            cache_entry_ttls_ms={
                kind: _int_or(env, name, cache_ttl_ms, 1000) for kind, name in READ_KIND_TTLS.items()
            },
            cache_max_entry_bytes=_int(env, "CACHE_MAX_ENTRY_BYTES", 1024),
            cache_local_bytes=_int(env, "CACHE_LOCAL_BYTES", 0),
            cache_local_min_bytes=_int(env, "CACHE_LOCAL_MIN_BYTES", 1),
            cache_fence_ms=_int(env, "CACHE_FENCE_MS", 2000),
            cache_selective_queries=_bool(env, "CACHE_SELECTIVE_QUERIES"),
            allow_allkeys_eviction=_bool(env, "CACHE_ALLOW_ALLKEYS_EVICTION"),
            cache_namespace=_text(env, "CACHE_NAMESPACE") or "rerum",
            redis_url=redis_url(env),
            redis_timeout_ms=_int(env, "REDIS_TIMEOUT_MS", 10),
            redis_maxmemory=_memory(env, "RERUM_REDIS_MAXMEMORY"),
            admin_agents=tuple((_text(env, "RERUM_ADMIN_AGENTS") or "").split()),
            admin_role_claim=_text(env, "RERUM_ADMIN_ROLE_CLAIM"),
            log_format=_choice(env, "LOG_FORMAT", LOG_FORMATS),
            log_level=_choice(env, "LOG_LEVEL", LOG_LEVELS),
            metrics_enabled=_bool(env, "METRICS_ENABLED"),
        )

    @property
    def fence_margin_ms(self) -> int:
        """How long before its fence expires a COMMIT must be acknowledged."""
        return min(1000, self.cache_fence_ms // 4)

    @property
    def uses_local_issuer(self) -> bool:
        return self.issuer_base_url is None and self.jwks_uri is None

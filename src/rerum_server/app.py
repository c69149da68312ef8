"""The ASGI application: body parsing, routing, error rendering and the headers every response gets.

The order of the checks is RERUM's (spec 1.2): CORS preflight, global body parsers (400/413/415
before anything else), maintenance switch, route, then in the handler auth, content type, body rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from rerum_server import errors, logs
from rerum_server.auth.oidc_client import HTTP_TIMEOUT, ClientSettings, OidcClient
from rerum_server.auth.verify import AuthSettings, TokenVerifier
from rerum_server.cache.client import CacheClient
from rerum_server.cache.guard import CommitGuard
from rerum_server.cache.safety import connect_check
from rerum_server.metrics import UNMATCHED, Recorder, counting_connects, route_label, sample_pool_forever
from rerum_server.reads import Reads
from rerum_server.settings import Settings, SettingsError
from rerum_server.store.migrate import migrate
from rerum_server.store.pool import DATABASE_UNREACHABLE, open_pool
from rerum_server.web.bodies import body_limit, parse_body
from rerum_server.web.conditional import etag_of, is_not_modified
from rerum_server.web.context import Services
from rerum_server.web.error_responses import error_response
from rerum_server.web.http import Request, Response, discard_body, has_body, header_map, read_body
from rerum_server.web.routes import resolve, rewrite_legacy
from rerum_server.writes import Writes

log = logging.getLogger("rerum_server")

DOWN_MESSAGE = (
    "RERUM v1 is down for updates or maintenance at this time.  We apologize for the inconvenience.  "
    "Try again later."
)
STATEMENT_TIMEOUT_MESSAGE = (
    "The request took longer than the database allows (RERUM_STATEMENT_TIMEOUT_MS) and was cancelled; "
    "nothing it would have written was applied.  Narrow the request, or split it."
)
DATABASE_UNREACHABLE_MESSAGE = (
    "The database connection failed during this request.  A read can simply be retried; a write may "
    "or may not have been applied, so read the object before retrying it."
)
_PREFLIGHT = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET,OPTIONS,HEAD,PUT,PATCH,DELETE,POST"),
    (
        "Access-Control-Allow-Headers",
        "Content-Type,Content-Length,Allow,Authorization,Location,ETag,Connection,Keep-Alive,Date,"
        "Cache-Control,Last-Modified,Link,X-HTTP-Method-Override,Origin,Referrer,User-Agent,"
        "Slug,If-Overwritten-Version,If-None-Match",
    ),
    ("Access-Control-Max-Age", "600"),
    ("Access-Control-Expose-Headers", "*"),
]
_CORS = [(b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", b"*")]
_ALWAYS_UP = ("/", "/context.json", "/metrics")


def auth_settings(settings: Settings) -> AuthSettings:
    """The verifier's configuration: an OIDC issuer, a JWKS, or the local key in the data dir."""
    return AuthSettings(
        audience=settings.audience,
        agent_claim=settings.agent_claim,
        # `rerum token` signs with the local issuer; a configured ISSUER only names a real one.
        issuer=None if settings.uses_local_issuer else settings.issuer,
        issuer_base_url=settings.issuer_base_url,
        jwks_uri=settings.jwks_uri,
        bot_agent=settings.bot_agent,
        local_key_dir=settings.data_dir if settings.uses_local_issuer else None,
    )


def client_settings(settings: Settings) -> ClientSettings:
    """The ``/client/*`` helpers' configuration: the issuer, the client credentials, the registration."""
    return ClientSettings(
        issuer_base_url=settings.issuer_base_url,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        audience=settings.audience,
        redirect_uri=settings.rerum_prefix,
    )


class RerumApp:
    """One worker's ASGI callable; its PostgreSQL pool lives from lifespan start-up to shutdown."""

    def __init__(self, settings_factory: Callable[[], Settings] = Settings.from_env) -> None:
        self._settings_factory = settings_factory
        self.services: Services | None = None
        self._worker = b""
        self._worker_name = ""
        self._recorder: Recorder | None = None
        self._sampler: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        settings = self._settings_factory()
        pool = await open_pool(
            settings.database_url, size=settings.pool_size, statement_timeout_ms=settings.statement_timeout_ms
        )
        async with pool.acquire() as connection:
            await migrate(connection)
        cache = self.cache_client(settings)
        self.services = Services(
            settings=settings,
            reads=Reads(
                pool, settings.naming.id_prefix, cache, max_entry_bytes=settings.cache_max_entry_bytes
            ),
            writes=Writes(
                pool,
                settings.naming,
                guard=CommitGuard(
                    cache, fence_ms=settings.cache_fence_ms, margin_ms=settings.fence_margin_ms
                ),
            ),
            verifier=TokenVerifier(auth_settings(settings)),
            cache=cache,
            oidc=OidcClient(httpx.AsyncClient(timeout=HTTP_TIMEOUT), client_settings(settings)),
        )
        self._worker_name = f"{socket.gethostname()}/{os.getpid()}"
        self._worker = self._worker_name.encode() if settings.worker_header else b""
        if settings.metrics_enabled:
            self._recorder = Recorder()
            self._sampler = asyncio.get_running_loop().create_task(
                sample_pool_forever(pool, settings.pool_size)
            )

    def cache_client(self, settings: Settings) -> CacheClient | None:
        """The worker's cache client (None when the cache is off); a seam for test-only variants."""
        if not settings.cache_enabled:
            return None
        if not settings.redis_url:
            raise SettingsError(
                "CACHE_ENABLED is true but no Redis is configured: set REDIS_URL or REDIS_HOST."
            )
        return CacheClient.from_url(
            settings.redis_url,
            timeout_s=settings.redis_timeout_ms / 1000,
            entry_ttl_ms=settings.cache_ttl_ms,
            entry_ttls_ms=settings.cache_entry_ttls_ms,
            fence_ms=settings.cache_fence_ms,
            namespace=settings.cache_namespace,
            local_copy_bytes=settings.cache_local_bytes,
            local_copy_min_bytes=settings.cache_local_min_bytes,
            redis_connect_func=counting_connects(
                connect_check(allow_allkeys=settings.allow_allkeys_eviction)
            ),
        )

    async def shutdown(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if self.services is not None:
            await self.services.verifier.aclose()
            await self.services.reads.pool.close()
            if self.services.cache is not None:
                await self.services.cache.aclose()
            if self.services.oidc is not None:
                await self.services.oidc.aclose()
        logs.drain()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            started = time.perf_counter()
            if self.services is None:  # servers without lifespan support
                await self.startup()
            request = Request(
                scope["method"],
                rewrite_legacy(scope["path"]),
                scope["query_string"].decode(),
                header_map(scope),
            )
            request.request_id = logs.request_id(request.headers.get("x-request-id"))
            response = await self._respond(request, receive)
            await self._send(scope, response, send, request.request_id)
            self._record(request, response, time.perf_counter() - started)

    def _record(self, request: Request, response: Response, seconds: float) -> None:
        """The request's metrics and its access line."""
        cache = response.header("X-Cache")
        if self._recorder is not None:
            self._recorder.request(request.route, request.method, response.status, cache, seconds)
        if logs.ACCESS.isEnabledFor(logging.INFO):
            logs.access(
                logs.AccessLine(request.request_id, request.method, request.route, request.path,
                                response.status, seconds * 1000, self._worker_name, cache, request.agent)
            )  # fmt: skip

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _respond(self, request: Request, receive: Any) -> Response:
        services = self.services
        assert services is not None
        # Resolved first for the route label of every answer (a 400 or 503 too); a miss is still
        # answered 404 only after the body checks, in RERUM's order.
        resolved = resolve(request.path)
        request.route = UNMATCHED if resolved is None else route_label(resolved[0].pattern)
        if request.method == "OPTIONS":
            if has_body(request.headers):
                await discard_body(receive)
            return Response(204, b"", list(_PREFLIGHT))
        try:
            limit = body_limit(request.header("content-type"))
            if limit is not None:
                parse_body(request, await read_body(receive, limit, request.header("content-length")))
            elif has_body(request.headers):
                await discard_body(receive)
            if services.settings.down and request.path not in _ALWAYS_UP:
                raise errors.ServiceUnavailable(DOWN_MESSAGE)
            if resolved is None:
                raise errors.PageNotFound()
            route, request.params = resolved
            handler = route.handlers.get(request.method)
            if handler is None and request.method == "HEAD":
                handler = route.handlers.get("GET")
            if handler is None:
                raise errors.MethodNotAllowed(route.refusal, route.allow)
            response = await handler(request, services)
        except errors.RerumError as error:
            response = error_response(error, request, services.settings.rerum_prefix)
            response.headers.extend(error.headers)
        except asyncpg.QueryCanceledError:
            # A statement ran into the statement timeout: this request's fault, not the server's (a
            # bare 500 said neither), and its transaction was rolled back.
            log.warning("statement timeout on %s %s", request.method, request.path)
            cancelled = errors.ServiceUnavailable(STATEMENT_TIMEOUT_MESSAGE)
            response = error_response(cancelled, request, services.settings.rerum_prefix)
        except DATABASE_UNREACHABLE as exc:
            log.warning("database unreachable on %s %s: %s: %s", request.method, request.path,
                        type(exc).__name__, exc)  # fmt: skip
            unavailable = errors.ServiceUnavailable(DATABASE_UNREACHABLE_MESSAGE)
            response = error_response(unavailable, request, services.settings.rerum_prefix)
            response.headers.append(("Retry-After", "1"))
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = error_response(
                errors.RerumError("Internal server error."), request, services.settings.rerum_prefix
            )
        if response.body and response.header("ETag") is None and response.status != 304:
            response.headers.append(("ETag", etag_of(response.body)))
        if is_not_modified(request, response):
            return Response(304, b"", [h for h in response.headers if h[0].lower() != "content-type"])
        return response

    async def _send(self, scope: dict[str, Any], response: Response, send: Any, request_id: str) -> None:
        headers = [(name.lower().encode(), value.encode()) for name, value in response.headers]
        headers.append((b"x-request-id", request_id.encode()))
        if not any(name == b"access-control-allow-origin" for name, _ in headers):
            headers += _CORS
        if response.content_type is not None and response.status != 304:
            headers.append((b"content-type", response.content_type.encode("latin-1")))
        if response.status not in (204, 304):
            headers.append((b"content-length", str(len(response.body)).encode()))
        if self._worker:
            headers.append((b"x-rerum-worker", self._worker))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        body = b"" if scope["method"] == "HEAD" or response.status in (204, 304) else response.body
        await send({"type": "http.response.body", "body": body})


def create_app() -> RerumApp:
    """The ASGI application for one worker, configured from the environment (the server's factory)."""
    return RerumApp()

"""The route table, in the order of the API document, and RERUM's legacy path rewrites.

Paths match case-insensitively with an optional trailing slash (Express's defaults); ids keep
their case. A GET handler also answers HEAD. Any other method gets the route's 405 phrase.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rerum_server.web import cache_admin, changes, client, gog, metrics_page, objects, openapi, pages, queries
from rerum_server.web.context import Services
from rerum_server.web.http import Request, Response

Handler = Callable[[Request, Services], Awaitable[Response]]

_CREATING = "Improper request method for creating, please use POST."
_GET_ONLY = "Improper request method, please use GET."
_SEARCHING = "Improper request method for search.  Please use POST."
_POST_ONLY = "Improper request method.  Please use POST."


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    handlers: dict[str, Handler]
    refusal: str = ""

    @property
    def allow(self) -> str:
        methods = list(self.handlers) + (
            ["HEAD"] if "GET" in self.handlers and "HEAD" not in self.handlers else []
        )
        return ", ".join(methods)


def _route(path: str, refusal: str = "", **handlers: Handler) -> Route:
    # A parameter never holds "/" (Express) nor NUL (PostgreSQL text cannot, so no object has one).
    regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/\\x00]+)", path) + "/?$"
    return Route(re.compile(regex, re.IGNORECASE), handlers, refusal)


ROUTES: tuple[Route, ...] = (
    _route("/", GET=pages.index),
    _route("/v1/", GET=pages.index),  # before "/v1": its optional trailing slash would also match "/v1/"
    _route("/v1", GET=pages.v1_redirect),
    _route("/context.json", GET=pages.context_json),
    _route("/v1/context.json", GET=pages.context_json),
    _route("/v1/api", GET=pages.api_map),
    _route("/v1/openapi.json", _GET_ONLY, GET=openapi.openapi_json),
    _route("/v1/id/{id}", _GET_ONLY, GET=objects.get_object),
    _route("/v1/since/{id}", _GET_ONLY, GET=objects.get_since),
    _route("/v1/history/{id}", _GET_ONLY, GET=objects.get_history),
    _route(
        "/v1/api/query",
        "Improper request method for requesting objects with matching properties.  Please use POST.",
        POST=queries.query,
        HEAD=queries.head_query,
    ),
    _route("/v1/api/search", _SEARCHING, POST=queries.search),
    _route("/v1/api/search/phrase", _SEARCHING, POST=queries.search_phrase),
    _route("/v1/api/cache/stats", _GET_ONLY, GET=cache_admin.stats),
    _route("/v1/api/cache/health", _GET_ONLY, GET=cache_admin.health),
    _route("/v1/api/cache/clear", "Improper request method.  Please use POST.", POST=cache_admin.clear),
    _route("/v1/api/create", _CREATING, POST=changes.create),
    _route("/v1/api/bulkCreate", _CREATING, POST=changes.bulk_create),
    _route(
        "/v1/api/update",
        "Improper request method for updating, please use PUT to update this object.",
        PUT=changes.update,
    ),
    _route(
        "/v1/api/bulkUpdate", "Improper request method for creating, please use PUT.", PUT=changes.bulk_update
    ),
    _route("/v1/api/patch", changes.OVERRIDE_PHRASES["patch"], PATCH=changes.patch, POST=changes.patch),
    _route("/v1/api/set", changes.OVERRIDE_PHRASES["set"], PATCH=changes.set_keys, POST=changes.set_keys),
    _route(
        "/v1/api/unset", changes.OVERRIDE_PHRASES["unset"], PATCH=changes.unset_keys, POST=changes.unset_keys
    ),
    _route(
        "/v1/api/overwrite",
        "Improper request method for overwriting, please use PUT to overwrite this object.",
        PUT=changes.overwrite,
    ),
    _route(
        "/v1/api/delete/{id}",
        "Improper request method for deleting, please use DELETE.",
        DELETE=changes.delete,
    ),
    _route(
        "/v1/api/release/{id}",
        "Improper request method for releasing, please use PATCH to release this object.",
        PATCH=changes.release,
    ),
    _route("/v1/api/accessToken", _POST_ONLY, POST=client.request_new_access_token),
    _route("/v1/api/refreshToken", _POST_ONLY, POST=client.request_new_refresh_token),
    _route("/client/register", _GET_ONLY, GET=client.register),
    _route("/client/request-new-access-token", _POST_ONLY, POST=client.request_new_access_token),
    _route("/client/request-new-refresh-token", _POST_ONLY, POST=client.request_new_refresh_token),
    _route("/client/verify", _GET_ONLY, GET=client.verify),
    _route("/gog/fragmentsInManuscript", _POST_ONLY, POST=gog.fragments_in_manuscript),
    _route("/gog/glossesInManuscript", _POST_ONLY, POST=gog.glosses_in_manuscript),
    _route("/gog/id/{id}", _GET_ONLY, GET=gog.get_gog_object),
    _route("/metrics", _GET_ONLY, GET=metrics_page.metrics),
)

_LEGACY = (
    (re.compile(r"^(/v1/api/[^/]+?)\.action(.*)$", re.IGNORECASE), r"\1\2"),
    (re.compile(r"^/v1/api/getByProperties(.*)$", re.IGNORECASE), r"/v1/api/query\1"),
    (re.compile(r"^/v1/api/batch_create(.*)$", re.IGNORECASE), r"/v1/api/bulkCreate\1"),
)


def rewrite_legacy(path: str) -> str:
    """Old RERUM paths (``create.action``, ``getByProperties``, ``batch_create``) → current ones."""
    for pattern, replacement in _LEGACY:
        path = pattern.sub(replacement, path)
    return path


def resolve(path: str) -> tuple[Route, dict[str, str]] | None:
    """The route matching ``path`` and its parameters, or None."""
    for route in ROUTES:
        match = route.pattern.match(path)
        if match is not None:
            return route, match.groupdict()
    return None

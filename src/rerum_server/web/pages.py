"""Static answers: the index page, the JSON-LD context, the endpoint map (every endpoint, from
``web/openapi.py``)."""

from __future__ import annotations

import html

import orjson

from rerum_server.answers import JSON
from rerum_server.query.compile import MAX_QUERY_TESTS
from rerum_server.query.parse import MAX_DEPTH, MAX_NODES, MAX_PATH_SEGMENTS
from rerum_server.web import openapi
from rerum_server.web.bodies import MAX_DOCUMENT_DEPTH
from rerum_server.web.context import Services
from rerum_server.web.http import Request, Response

ENDPOINTS = {
    "/create": "POST - Create a new object.",
    "/bulkCreate": "POST - Create multiple new objects in one request.",
    "/update": "PUT - Update the body an existing object.",
    "/bulkUpdate": "PUT - Update multiple existing objects in one request.",
    "/patch": "PATCH - Update the properties of an existing object.",
    "/set": "PATCH - Update the body an existing object by adding a new property.",
    "/unset": "PATCH - Update the body an existing object by removing an existing property.",
    "/delete": "DELETE - Mark an object as deleted.",
    "/query": "POST - Supply a JSON object to match on, and query the db for an array of matches.",
    "/search": "POST - Full-text search across stored objects.",
    "/release": "PATCH - Lock a JSON object from changes and guarantee the content and URI.",
    "/overwrite": "PUT - Update a specific document in place, overwriting the existing body.",
}
OPENAPI = "/v1/openapi.json"
# The reference's greeting and twelve endpoints, byte for byte (its clients and tests read them), then
# every path and method this server answers.
_API_MAP = orjson.dumps(
    {
        "message": "Welcome to v1 in nodeJS!  Below are the available endpoints, used like /v1/api/{endpoint}",
        "endpoints": ENDPOINTS,
        "allEndpoints": {f"{method} {path}": summary for path, method, summary in openapi.ENDPOINTS},
        "openapi": OPENAPI,
    }
)
_RERUM = "http://store.rerum.io/v1/vocab#"
CONTEXT = orjson.dumps(
    {
        "@context": {
            "rerum": _RERUM,
            "__rerum": {"@id": "rerum:metadata", "@type": "@id"},
            "alpha": "rerum:alpha",
            "APIversion": "rerum:apiVersion",
            "createdAt": {"@id": "rerum:createdAt", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"},
            "isOverwritten": "rerum:isOverwritten",
            "isReleased": "rerum:isReleased",
            "history": "rerum:history",
            "releases": "rerum:releases",
            "prime": {"@id": "rerum:prime", "@type": "@id"},
            "previous": {"@id": "rerum:previous", "@type": "@id"},
            "next": {"@id": "rerum:next", "@type": "@id", "@container": "@list"},
            "replaces": {"@id": "rerum:replaces", "@type": "@id"},
            "generatedBy": {"@id": "rerum:generatedBy", "@type": "@id"},
            "slug": "rerum:slug",
            "score": "rerum:score",
            "__deleted": "rerum:deleted",
            "deletor": {"@id": "rerum:deletor", "@type": "@id"},
            "time": "rerum:deletedAt",
            "object": "rerum:deletedObject",
        }
    }
)


def _index_html(services: Services) -> bytes:
    api = html.escape(services.settings.rerum_prefix)
    rows = "".join(
        f"<tr><td><code>{method} {html.escape(path)}</code></td><td>{html.escape(text)}</td></tr>"
        for path, method, text in openapi.ENDPOINTS
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>RERUM v1 API</title></head><body>"
        "<h1>RERUM v1 API</h1>"
        "<p>A store of versioned JSON-LD objects (Web Annotations, IIIF manifests ...), compatible with the "
        f'<a href="https://store.rerum.io/v1/API.html">RERUM v1 API</a>. This server: <code>{api}</code>.</p>'
        "<p>Read an object with <code>GET /v1/id/{id}</code>, its ancestors with <code>/v1/history/{id}</code> "
        "and its descendants with <code>/v1/since/{id}</code>. Writes need a bearer token "
        "(<code>rerum token --agent URI</code> prints one for a local server). A document may nest objects "
        f"and arrays at most {MAX_DOCUMENT_DEPTH} levels deep (the document itself is level 1); a deeper "
        "one is refused with 400.</p>"
        f"<table><tr><th>Endpoint</th><th>Use</th></tr>{rows}</table>"
        f"<p>Query limits (400 beyond): {MAX_NODES:,} values, nesting depth {MAX_DEPTH}, "
        f"{MAX_PATH_SEGMENTS} path components, {MAX_QUERY_TESTS} tests per document (about "
        f"{MAX_QUERY_TESTS // 4} equality keys or {MAX_QUERY_TESTS * 2} <code>$in</code> values); "
        f"<code>limit</code> at most {services.settings.max_limit}, <code>skip</code> at most "
        f"{services.settings.max_skip:,}. A query still running after "
        f"{services.settings.statement_timeout_ms:,} ms is cancelled (503). bulkCreate and bulkUpdate take at "
        f"most {services.settings.max_bulk_items:,} objects (413 beyond).</p>"
        '<p><a href="/v1/api">Endpoint map (JSON)</a> · '
        f'<a href="{OPENAPI}">OpenAPI 3.1 description</a> · <a href="/v1/context.json">JSON-LD context</a></p>'
        "</body></html>"
    ).encode()


async def index(request: Request, services: Services) -> Response:
    return Response(200, _index_html(services), content_type="text/html; charset=utf-8")


async def v1_redirect(request: Request, services: Services) -> Response:
    return Response(301, b"", [("Location", "/v1/")])


async def context_json(request: Request, services: Services) -> Response:
    return Response(200, CONTEXT, [("Cache-Control", "public, max-age=0")], JSON)


async def api_map(request: Request, services: Services) -> Response:
    return Response(200, _API_MAP, content_type=JSON)

"""``GET /v1/openapi.json``: the OpenAPI 3.1 description of every endpoint, built here from data.

It describes the wire as it is, RERUM's oddities included: most errors are ``text/plain`` with
RERUM's literal message heads and tails, a few are JSON (503 ``{"message"}``, the overwrite 409
``{"currentVersion"}``), a 405 is empty with an ``Allow`` header, an ``Authorization`` header that
does not start with ``Bearer `` turns any error into 401, and with ``DOWN=true`` every endpoint but
``/`` and ``/context.json`` answers 503. ``ENDPOINTS`` (one line per path and method) also feeds the
index page and ``/v1/api``. ``tests/http/test_openapi.py`` keeps the document and ``web/routes.py``
in step and runs schemathesis against a live server.
"""

from __future__ import annotations

from typing import Any

import orjson

from rerum_server.answers import JSON
from rerum_server.web.bodies import JSON_LIMIT, MAX_DOCUMENT_DEPTH, TEXT_LIMIT
from rerum_server.web.context import Services
from rerum_server.web.http import Request, Response

Schema = dict[str, Any]

# (path, method, summary): every path and method the router answers, in route order; the HEAD of a
# GET path is implied (listed only for the query, which has no GET).
ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("/", "GET", "This index page (HTML)."),
    ("/v1/", "GET", "This index page (HTML)."),
    ("/v1", "GET", "Redirect (301) to /v1/."),
    ("/context.json", "GET", "The JSON-LD context of RERUM's metadata terms."),
    ("/v1/context.json", "GET", "The JSON-LD context of RERUM's metadata terms."),
    ("/v1/api", "GET", "The endpoint map (JSON)."),
    ("/v1/openapi.json", "GET", "This API's OpenAPI 3.1 description."),
    ("/v1/id/{id}", "GET", "Read one object by id or slug (a deleted one as its shell)."),
    ("/v1/since/{id}", "GET", "The object's descendants, depth first."),
    ("/v1/history/{id}", "GET", "The object's ancestors, nearest first."),
    ("/v1/api/query", "POST", "Supply a JSON object to match on, and query the db for an array of matches."),
    ("/v1/api/query", "HEAD", "The size of the POST answer (Content-Length); 404 when nothing matches."),
    ("/v1/api/search", "POST", "Full-text search across stored objects (any of the words), best first."),
    ("/v1/api/search/phrase", "POST", "Phrase search across stored objects (options.slop), best first."),
    ("/v1/api/cache/stats", "GET", "Cache statistics, summed over every worker and host."),
    ("/v1/api/cache/health", "GET", "Whether the cache Redis is reachable and safe to use."),
    ("/v1/api/cache/clear", "POST", "Empty the cache (administrators only)."),
    ("/metrics", "GET", "Prometheus metrics of every worker and the cluster-wide cache counters."),
    ("/v1/api/create", "POST", "Create a new object."),
    ("/v1/api/bulkCreate", "POST", "Create multiple new objects in one request."),
    ("/v1/api/update", "PUT", "Update the body an existing object."),
    ("/v1/api/bulkUpdate", "PUT", "Update multiple existing objects in one request."),
    ("/v1/api/patch", "PATCH", "Update the properties of an existing object."),
    ("/v1/api/patch", "POST", "As PATCH, with X-HTTP-Method-Override: PATCH."),
    ("/v1/api/set", "PATCH", "Update the body an existing object by adding a new property."),
    ("/v1/api/set", "POST", "As PATCH, with X-HTTP-Method-Override: PATCH."),
    ("/v1/api/unset", "PATCH", "Update the body an existing object by removing an existing property."),
    ("/v1/api/unset", "POST", "As PATCH, with X-HTTP-Method-Override: PATCH."),
    ("/v1/api/overwrite", "PUT", "Update a specific document in place, overwriting the existing body."),
    ("/v1/api/delete/{id}", "DELETE", "Mark an object as deleted."),
    ("/v1/api/release/{id}", "PATCH", "Lock a JSON object from changes and guarantee the content and URI."),
    ("/v1/api/accessToken", "POST", "A new access token for a refresh token (the issuer's answer)."),
    ("/v1/api/refreshToken", "POST", "A refresh token for an authorization code (the issuer's answer)."),
    ("/client/register", "GET", "The issuer's authorization URL to register with (text)."),
    ("/client/request-new-access-token", "POST", "As /v1/api/accessToken."),
    ("/client/request-new-refresh-token", "POST", "As /v1/api/refreshToken."),
    ("/client/verify", "GET", "200 when the bearer token verifies."),
    ("/gog/fragmentsInManuscript", "POST", "Gallery of Glosses: the WitnessFragments of a manuscript."),
    ("/gog/glossesInManuscript", "POST", "Gallery of Glosses: the glosses of a manuscript."),
    ("/gog/id/{id}", "GET", "Gallery of Glosses: an object expanded with its annotations."),
)

# --- media types, schemas, headers ------------------------------------------------------------------

_TEXT = "text/plain"
_HTML = "text/html"
_JSON = "application/json"
_LD = "application/ld+json"
_ANY_OBJECT: Schema = {"type": "object"}
_STRING: Schema = {"type": "string"}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, Schema] = {
    "Document": {
        "type": "object",
        "description": "A stored object as RERUM answers it (id negotiated, `__rerum` metadata; no `_id`). "
        "A deleted object is its shell: `@id` and `__deleted` {object, deletor, time}.",
    },
    "DocumentList": {"type": "array", "items": _ref("Document")},
    "MutationResult": {
        "type": "object",
        "required": ["new_obj_state"],
        "properties": {"new_obj_state": _ref("Document")},
        "description": "The object's new state, with a copy of it in `new_obj_state`.",
    },
    "ErrorText": {
        "type": "string",
        "description": "RERUM's literal message head, then a status-dependent tail (400, 401, 403, 404 and "
        "5xx have one; 409, 413, 415 and 501 none).",
    },
    "Message": {"type": "object", "required": ["message"], "properties": {"message": _STRING}},
    "VersionConflict": {
        "type": "object",
        "required": ["currentVersion"],
        "properties": {
            "currentVersion": {"type": "object", "description": "The stored document, with `_id`."}
        },
    },
    "Filter": {
        "type": "object",
        "minProperties": 1,
        "description": "A MongoDB filter (dotted paths, `$in`, `$or`, `$exists`, `$regex` ...); see docs/query.md.",
    },
    "SearchBody": {
        "type": "object",
        "required": ["searchText"],
        "properties": {
            "searchText": {"type": "string", "minLength": 1},
            "options": {
                "type": "object",
                "properties": {"slop": {"type": "integer", "minimum": 0, "maximum": 10}},
            },
        },
    },
    "GogEntry": {
        "type": "object",
        "required": ["@id", "@type"],
        "properties": {"@id": _STRING, "@type": {"enum": ["WitnessFragment", "Gloss"]}},
    },
    "ApiMap": {
        "type": "object",
        "required": ["message", "endpoints", "allEndpoints"],
        "properties": {
            "message": _STRING,
            "endpoints": {"type": "object", "additionalProperties": _STRING},
            "allEndpoints": {"type": "object", "additionalProperties": _STRING},
            "openapi": _STRING,
        },
    },
    "CacheStats": {
        "type": "object",
        "required": ["enabled", "ttl", "ttls", "hits", "misses", "hitRate", "entries", "bytes"],
        "properties": {
            "enabled": {"type": "boolean"},
            "ttl": {"type": "integer"},
            "ttls": {"type": "object", "additionalProperties": {"type": "integer"}},
            "hits": {"type": "integer"},
            "misses": {"type": "integer"},
            "hitRate": {"type": "number"},
            "entries": {"type": "integer"},
            "bytes": {"type": "integer"},
            "endpoints": {"type": "object"},
        },
    },
    "CacheHealth": {
        "type": "object",
        "required": ["enabled", "healthy", "status"],
        "properties": {
            "enabled": {"type": "boolean"},
            "healthy": {"type": "boolean"},
            "status": {"enum": ["ok", "unsafe", "credentials-refused", "unreachable"]},
            "problems": {"type": "array", "items": _STRING},
        },
    },
    "CacheCleared": {
        "type": "object",
        "required": ["cleared", "bytes", "enabled"],
        "properties": {
            "cleared": {"type": "integer"},
            "bytes": {"type": "integer"},
            "enabled": {"type": "boolean"},
        },
    },
}

_HEADERS: dict[str, Schema] = {
    "ETag": {
        "description": "Express's formula over the body (weak; strong on /v1/id and /gog/id).",
        "schema": _STRING,
    },
    "X-Cache": {
        "description": "Whether the shared cache answered (HIT), PostgreSQL did (MISS), or Redis could not be "
        "used (BYPASS).",
        "schema": {"enum": ["HIT", "MISS", "BYPASS"]},
    },
    "Location": {"description": "The object's negotiated id.", "schema": _STRING},
    "Link": {
        "description": "RERUM's Link value (an ldp type, a media type for containers, or the context).",
        "schema": _STRING,
    },
    "Allow": {
        "description": "The methods of this path (on a 405), or RERUM's constant list.",
        "schema": _STRING,
    },
    "Cache-Control": {"schema": _STRING},
    "Last-Modified": {
        "description": "When the object last changed (UTC); absent without dates.",
        "schema": _STRING,
    },
    "Current-Overwritten-Version": {
        "description": "`__rerum.isOverwritten` (empty when never overwritten); echo it in If-Overwritten-Version.",
        "schema": _STRING,
    },
}


def _headers(*names: str, optional: tuple[str, ...] = ()) -> dict[str, Schema]:
    return {name: {**_HEADERS[name], "required": name not in optional} for name in (*names, *optional)}


def _content(media_types: tuple[str, ...], schema: Schema) -> dict[str, Schema]:
    return {media_type: {"schema": schema} for media_type in media_types}


def _response(
    description: str,
    media_types: tuple[str, ...] = (),
    schema: Schema | None = None,
    headers: dict[str, Schema] | None = None,
) -> Schema:
    response: Schema = {"description": description}
    if media_types:
        response["content"] = _content(media_types, schema or {})
    if headers:
        response["headers"] = headers
    return response


def _text(description: str, headers: dict[str, Schema] | None = None) -> Schema:
    return _response(description, (_TEXT,), _ref("ErrorText"), headers)


def _unavailable(extra: str = "") -> Schema:
    return _response("`DOWN=true` (maintenance)" + extra + ': `{"message": ...}`.', (_JSON,), _ref("Message"))


_BAD_SCHEME = _text(
    "An Authorization header not starting with `Bearer ` turns any error into 401 (RERUM's messenger)."
)
_NO_TOKEN = _text(
    "No token, or a token that does not verify (signature, `iss`, `aud`, `exp`, algorithm), or one "
    "naming no RERUM agent (`This token did not contain a known RERUM agent.`)."
)
_BODY_400 = (
    "A body that does not parse (the parser's message), a JSON body that is not an object or array, holds "
    f"U+0000 or nests deeper than {MAX_DOCUMENT_DEPTH} levels; "
)
_413 = _text(
    f"A JSON body over {JSON_LIMIT} bytes or a text body over {TEXT_LIMIT} (`request entity too large`)."
)
_415_JSON = _text(
    "Missing, multiple or other Content-Type (this endpoint requires application/json or "
    "application/ld+json), or a charset that is not UTF."
)
_415_TEXT = _text(
    "Missing, multiple or other Content-Type (this endpoint requires application/json, "
    "application/ld+json, or text/plain), or a charset that is not UTF."
)
_CHARSET_415 = _text("A charset that is not UTF (the Content-Type is not otherwise checked).")
_WRITE_503 = _unavailable(
    ", `READONLY=true`, the cache could not be fenced (nothing written), a statement ran into "
    "RERUM_STATEMENT_TIMEOUT_MS, or the database connection failed"
)
_READ_503 = _unavailable(
    ", a statement ran into RERUM_STATEMENT_TIMEOUT_MS, or the database connection failed"
)
_NOT_MODIFIED = _response("If-None-Match matched the ETag (no body).", headers=_headers("ETag"))
_OBJECT_TYPES = (_LD, _JSON)  # JSON-LD iff the object has an @context


def _json_body(schema: Schema, description: str = "", *, required: bool = True) -> Schema:
    body: Schema = {"required": required, "content": _content((_JSON, _LD), schema)}
    if description:
        body["description"] = description
    return body


_BEARER = [{"bearer": []}]
_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[^/\\x00]+$"},
    "description": "The object's `_id` (24 hex digits) or slug.",
}
_SLUG = {
    "name": "Slug",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^/]+$"},
}
_OVERRIDE = {"name": "X-HTTP-Method-Override", "in": "header", "required": True, "schema": {"const": "PATCH"}}


def _page(default: int) -> list[Schema]:
    return [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer"},
            "description": f"Default {default}; at most RERUM_MAX_QUERY_LIMIT (500). JavaScript parseInt: "
            "non-positive or unparseable values give the default.",
        },
        {
            "name": "skip",
            "in": "query",
            "required": False,
            "schema": {"type": "integer"},
            "description": "Default 0; at most RERUM_MAX_QUERY_SKIP (100000).",
        },
    ]


def _operation(
    summary: str,
    responses: dict[str, Schema],
    *,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    secured: bool = False,
    description: str = "",
) -> Schema:
    operation: Schema = {"summary": summary, "responses": responses}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    if secured:
        operation["security"] = _BEARER
    return operation


def _with_head(get: Schema, head_summary: str) -> dict[str, Schema]:
    """GET and its HEAD: the same statuses and headers, no body (Content-Length is the GET's)."""
    head = {**get, "summary": head_summary, "responses": {}}
    for status, response in get["responses"].items():
        head["responses"][status] = {
            key: ({media_type: {} for media_type in value} if key == "content" else value)
            for key, value in response.items()
        }
    return {"get": get, "head": head}


# --- the paths --------------------------------------------------------------------------------------


def _page_paths() -> dict[str, Schema]:
    index = _operation("This index page.", {"200": _response("The index page.", (_HTML,), _STRING)})
    index_v1 = {**index, "responses": {**index["responses"], "503": _unavailable()}}
    context = _operation(
        "RERUM's JSON-LD context.", {"200": _response("The context.", (_JSON,), _ANY_OBJECT)}
    )
    context_v1 = {**context, "responses": {**context["responses"], "503": _unavailable()}}
    redirect = _operation(
        "Redirect to /v1/.",
        {
            "301": _response("Moved.", headers={"Location": {"schema": {"const": "/v1/"}, "required": True}}),
            "503": _unavailable(),
        },
    )
    api_map = _operation(
        "The endpoint map.",
        {
            "200": _response(
                "RERUM's greeting and its twelve `endpoints` (as the reference sends them), "
                "`allEndpoints` listing every path and method, and `openapi`.",
                (_JSON,),
                _ref("ApiMap"),
            ),
            "503": _unavailable(),
        },
    )
    openapi = _operation(
        "This description.",
        {"200": _response("The OpenAPI 3.1 document.", (_JSON,), _ANY_OBJECT), "503": _unavailable()},
    )
    return {
        "/": _with_head(index, "Headers of the index page."),
        "/v1/": _with_head(index_v1, "Headers of the index page."),
        "/v1": _with_head(redirect, "Redirect to /v1/."),
        "/context.json": _with_head(context, "Headers of the context."),
        "/v1/context.json": _with_head(context_v1, "Headers of the context."),
        "/v1/api": _with_head(api_map, "Headers of the endpoint map."),
        "/v1/openapi.json": _with_head(openapi, "Headers of this description."),
    }


def _read_paths() -> dict[str, Schema]:
    object_headers = _headers(
        "ETag",
        "X-Cache",
        "Cache-Control",
        "Current-Overwritten-Version",
        "Link",
        "Allow",
        optional=("Location", "Last-Modified"),
    )
    get_object = _operation(
        "Read one object by id or slug.",
        {
            "200": _response(
                "The object (a deleted one as its shell); revalidate with If-None-Match.",
                _OBJECT_TYPES,
                _ref("Document"),
                object_headers,
            ),
            "304": _NOT_MODIFIED,
            "401": _BAD_SCHEME,
            "404": _text("`No RERUM object with id '<id>'` + the 404 tail.", _headers("X-Cache")),
            "503": _READ_503,
        },
        parameters=[_ID],
    )

    def tree(summary: str) -> Schema:
        return _operation(
            summary,
            {
                "200": _response(
                    "The versions, as an array.",
                    (_LD,),
                    _ref("DocumentList"),
                    _headers("ETag", "X-Cache", "Link", "Allow"),
                ),
                "304": _NOT_MODIFIED,
                "401": _BAD_SCHEME,
                "404": _text(
                    "`Cannot produce a history. There is no object in the database with id '<id>'.  "
                    "Check the URL.` (or `... is deleted.`) + the 404 tail.",
                    _headers("X-Cache"),
                ),
                "503": _READ_503,
            },
            parameters=[_ID],
        )

    list_200 = _response(
        "The matches, as an array.",
        (_LD,),
        _ref("DocumentList"),
        _headers("ETag", "X-Cache", "Link", "Allow"),
    )
    query = _operation(
        "Query by a MongoDB filter.",
        {
            "200": list_200,
            "400": _text(
                _BODY_400 + "an empty filter (`Detected empty JSON object.  You must provide at least "
                "one property in the /query request body JSON.`), an array, an unsupported or malformed "
                "operator, or a filter past the query limits (see the index page)."
            ),
            "401": _BAD_SCHEME,
            "413": _413,
            "415": _415_JSON,
            "503": _READ_503,
        },
        parameters=_page(100),
        body=_json_body(_ref("Filter")),
        description="Results come in insertion order, so paging is deterministic.",
    )
    head_query = _operation(
        "The size of the query answer.",
        {
            "200": _response(
                "At least one match: Content-Length is the POST answer's; no body.",
                (_JSON,),
                headers=_headers("X-Cache"),
            ),
            "400": _text(_BODY_400 + "or a malformed filter (no body sent on HEAD)."),
            "401": _BAD_SCHEME,
            "404": _text(
                "No match (`There are no objects in the database matching the query. Check the "
                "request body.`, not sent on HEAD).",
                _headers("X-Cache"),
            ),
            "503": _READ_503,
        },
        parameters=_page(100),
        description="Without a JSON body every document matches. Its Content-Type is not checked.",
    )

    def search(summary: str) -> Schema:
        return _operation(
            summary,
            {
                "200": _response(
                    "The hits, best first, each with `__rerum.score`.",
                    (_LD,),
                    _ref("DocumentList"),
                    _headers("ETag", "X-Cache", "Link", "Allow"),
                ),
                "400": _text(
                    _BODY_400 + "no text (`You did not provide text to search for in the search "
                    "request.`), a `searchText` that is not a string, or bad `options`."
                ),
                "401": _BAD_SCHEME,
                "413": _413,
                "415": _415_TEXT,
                "503": _READ_503,
            },
            parameters=_page(100),
            body={
                "required": True,
                "content": {
                    **_content((_JSON, _LD), _ref("SearchBody")),
                    _TEXT: {"schema": {"type": "string", "minLength": 1, "maxLength": 1000}},
                },
            },
        )

    return {
        "/v1/id/{id}": _with_head(get_object, "Headers of one object (Content-Length of the GET)."),
        "/v1/since/{id}": _with_head(tree("The object's descendants, depth first."), "Headers of /since."),
        "/v1/history/{id}": _with_head(
            tree("The object's ancestors, nearest first."), "Headers of /history."
        ),
        "/v1/api/query": {"post": query, "head": head_query},
        "/v1/api/search": {"post": search("Documents containing any of the words.")},
        "/v1/api/search/phrase": {
            "post": search("Documents containing the phrase (options.slop, default 2).")
        },
    }


def _cache_paths() -> dict[str, Schema]:
    no_store = {"Cache-Control": {"schema": {"const": "no-store"}, "required": True}}
    stats = _operation(
        "Cache statistics over every worker and host.",
        {
            "200": _response("The counters (see docs/cache.md).", (_JSON,), _ref("CacheStats"), no_store),
            "401": _BAD_SCHEME,
            "503": _unavailable(", or Redis cannot be reached"),
        },
    )
    metrics = _operation(
        "Prometheus metrics of every worker and the cluster-wide cache counters (docs/metrics.md).",
        {
            "200": _response(
                "The Prometheus text format.",
                ("text/plain; version=0.0.4; charset=utf-8",),
                _STRING,
                no_store,
            ),
            "401": _BAD_SCHEME,
            "404": _text("`METRICS_ENABLED=false`."),
        },
    )
    health = _operation(
        "Whether the cache Redis is usable.",
        {
            "200": _response(
                "Usable (`status: ok`), or the cache is off.", (_JSON,), _ref("CacheHealth"), no_store
            ),
            "401": _BAD_SCHEME,
            "503": _response(
                'Not usable (`status` says why), or `DOWN=true` (`{"message": ...}`).',
                (_JSON,),
                {"anyOf": [_ref("CacheHealth"), _ref("Message")]},
            ),
        },
    )
    clear = _operation(
        "Make every cache entry unreachable.",
        {
            "200": _response(
                "How many entries and bytes were live.", (_JSON,), _ref("CacheCleared"), no_store
            ),
            "401": _NO_TOKEN,
            "403": _text("`Only an administrator of this server may clear the cache.` + the 403 tail."),
            "503": _unavailable(", or Redis cannot be reached"),
        },
        secured=True,
        description="For agents in RERUM_ADMIN_AGENTS, or tokens whose RERUM_ADMIN_ROLE_CLAIM lists "
        "`rerum-admin`. The body is not read.",
    )
    return {
        "/v1/api/cache/stats": _with_head(stats, "Headers of the statistics."),
        "/v1/api/cache/health": _with_head(health, "Headers of the health report."),
        "/v1/api/cache/clear": {"post": clear},
        "/metrics": _with_head(metrics, "Headers of the metrics."),
    }


_FORBIDDEN_AGENT = "`Could not get agent from req.user.  Have you registered with RERUM?` (no agent claim)"


def _write(
    summary: str,
    success: dict[str, Schema],
    errors_: dict[str, str],
    *,
    body: Schema | None,
    parameters: list[Schema] | None = None,
    description: str = "",
) -> Schema:
    responses: dict[str, Schema] = dict(success)
    for status, text in errors_.items():
        responses[status] = _text(text)
    responses["401"] = _NO_TOKEN
    responses.setdefault("403", _text(_FORBIDDEN_AGENT + " + the 403 tail."))
    if body is not None:
        responses["413"] = _413
        responses["415"] = _415_JSON
    responses["503"] = _WRITE_503
    return _operation(
        summary,
        dict(sorted(responses.items())),
        parameters=parameters,
        body=body,
        secured=True,
        description=description,
    )


def _write_paths() -> dict[str, Schema]:
    object_headers = _headers("ETag", "Link", "Allow", optional=("Location",))
    mutation = _response("The new state.", _OBJECT_TYPES, _ref("MutationResult"), object_headers)
    bulk_headers = {
        "Link": {
            "description": "One line per object: its bare `@id` URL.",
            "schema": _STRING,
            "required": False,
        }
    }

    def bulk(status: str) -> dict[str, Schema]:
        return {
            status: _response("The objects, in request order.", (_JSON,), _ref("DocumentList"), bulk_headers)
        }

    new_object = _json_body({"type": "object", "minProperties": 1, "not": {"required": ["@id"]}})
    identified = _json_body({"type": "object", "anyOf": [{"required": ["@id"]}, {"required": ["id"]}]})
    bulk_body = _json_body({"type": "array", "minItems": 1, "items": {"type": "object"}})
    no_id_edit = "`Object in request body must have the property '@id' or 'id'. ` (or an `@id` that is not an http(s) URL)"
    bulk_400 = (
        "`The request body must be an array of objects.`, `No action on an empty array.`, an element "
        "that is not an object or (does not) declare an identifier"
    )

    def edit(summary: str, *, override: bool) -> Schema:
        errors_ = {
            "400": _BODY_400 + no_id_edit,
            "403": _FORBIDDEN_AGENT + ", or `The object you are trying to update is deleted. `",
            "501": "`This object is not from RERUM and will need imported. This is not automated yet. You can "
            "make a new object with create. ` (no such object)",
        }
        operation = _write(
            summary, {"200": mutation}, errors_, body=identified, parameters=[_OVERRIDE] if override else None
        )
        if override:
            operation["responses"]["405"] = _response(
                "X-HTTP-Method-Override is not `PATCH` (after the token and Content-Type checks): empty body.",
                headers={"Allow": {"schema": _STRING, "required": True}},
            )
        return operation

    paths: dict[str, Schema] = {
        "/v1/api/create": {
            "post": _write(
                "Create a new object.",
                {"201": mutation},
                {
                    "400": _BODY_400
                    + "an empty object (`Detected empty JSON object.  You must provide at least one "
                    "property in the /create request body JSON.`), an array, or a bad Slug header",
                    "409": "`The id provided already exists.  Please use a different _id or Slug.`",
                },
                body=new_object,
                parameters=[_SLUG],
            )
        },
        "/v1/api/bulkCreate": {
            "post": _write(
                "Create multiple new objects in one request.",
                bulk("201"),
                {"400": _BODY_400 + bulk_400, "409": "A client `_id` taken or repeated."},
                body=bulk_body,
                description="At most RERUM_MAX_BULK_ITEMS (1000) objects; more get 413 naming the limit.",
            )
        },
        "/v1/api/update": {
            "put": _write(
                "Update the body an existing object (or import a foreign one).",
                {"200": mutation},
                {
                    "400": _BODY_400 + "`Object in request body must have an 'id' or '@id' property. `",
                    "403": _FORBIDDEN_AGENT + ", or `The object you are trying to update is deleted. `",
                    "404": "`Object not in RERUM even though it has a RERUM URI.  Check if it is an authentic RERUM "
                    "object. `",
                },
                body=identified,
            )
        },
        "/v1/api/bulkUpdate": {
            "put": _write(
                "Update multiple existing objects in one request.",
                bulk("200"),
                {"400": _BODY_400 + bulk_400},
                body=bulk_body,
                description="Elements naming no live RERUM object are skipped. At most RERUM_MAX_BULK_ITEMS objects.",
            )
        },
        "/v1/api/patch": {
            "patch": edit("Update the properties of an existing object.", override=False),
            "post": edit("PATCH with X-HTTP-Method-Override: PATCH.", override=True),
        },
        "/v1/api/set": {
            "patch": edit("Add new properties to an existing object.", override=False),
            "post": edit("PATCH with X-HTTP-Method-Override: PATCH.", override=True),
        },
        "/v1/api/unset": {
            "patch": edit("Remove properties of an existing object.", override=False),
            "post": edit("PATCH with X-HTTP-Method-Override: PATCH.", override=True),
        },
        "/v1/api/overwrite": {
            "put": _write(
                "Overwrite an object in place.",
                {
                    "200": _response(
                        "The new state.",
                        _OBJECT_TYPES,
                        _ref("MutationResult"),
                        {**object_headers, **_headers("Current-Overwritten-Version")},
                    ),
                    "409": _response(
                        "If-Overwritten-Version (or the body's `__rerum.isOverwritten`) is not the stored "
                        "version.",
                        (_JSON,),
                        _ref("VersionConflict"),
                    ),
                },
                {
                    "400": _BODY_400 + no_id_edit,
                    "403": _FORBIDDEN_AGENT + ", or the object is deleted or released",
                    "404": "`No object with this id could be found in RERUM. Cannot overwrite. `",
                },
                body=identified,
                parameters=[
                    {"name": "If-Overwritten-Version", "in": "header", "required": False, "schema": _STRING}
                ],
                description="401 also when the agent is not the object's generator.",
            )
        },
        "/v1/api/delete/{id}": {
            "delete": _write(
                "Mark an object as deleted.",
                {"204": _response("Deleted (no body).")},
                {
                    "403": _FORBIDDEN_AGENT + ", or the object is already deleted or released",
                    "404": "`No object with this id could be found in RERUM.  Cannot delete.`",
                },
                body=None,
                parameters=[_ID],
                description="401 also when the agent is not the object's generator.",
            )
        },
        "/v1/api/release/{id}": {
            "patch": _write(
                "Release an object (and name it with Slug).",
                {"200": mutation},
                {
                    "400": "A bad Slug header.",
                    "403": _FORBIDDEN_AGENT + ", or the object is deleted or already released",
                    "404": "`No object with this id could be found in RERUM. Cannot release. `",
                    "409": "`The id provided already exists.  Please use a different _id or Slug.`",
                },
                body=None,
                parameters=[_ID, _SLUG],
                description="401 also when the agent is not the object's generator. The body is not read.",
            )
        },
    }
    return paths


def _client_paths() -> dict[str, Schema]:
    def token(summary: str, field: str) -> Schema:
        return _operation(
            summary,
            {
                "200": _response("The issuer's JSON, unchanged.", (_JSON,), _ANY_OBJECT),
                "400": _text(f'No body like {{"{field}":"..."}}.'),
                "4XX": _text(
                    "The issuer refused: its status and its `error_description` (the reference answered 500); "
                    "or 401 for a bad Authorization scheme."
                ),
                "413": _413,
                "415": _CHARSET_415,
                "501": _text("No OIDC issuer (ISSUER_BASE_URL) or no CLIENT_ID configured."),
                "502": _text("The issuer did not answer usably."),
                "503": _unavailable(),
            },
            body=_json_body(
                {"type": "object", "required": [field], "properties": {field: _STRING}}, required=False
            ),
            description="The body's Content-Type is not checked; 415 is only for a charset that is not UTF.",
        )

    register = _operation(
        "The issuer's authorization URL.",
        {
            "200": _response("The URL, as text/html (as the reference sends it).", (_HTML,), _STRING),
            "401": _BAD_SCHEME,
            "501": _text("No OIDC issuer (ISSUER_BASE_URL) or no CLIENT_ID configured."),
            "502": _text("The issuer did not answer usably."),
            "503": _unavailable(),
        },
    )
    verify = _operation(
        "Check a bearer token.",
        {
            "200": _response("`The token was verified by Auth0`", (_TEXT,), _STRING),
            "401": _NO_TOKEN,
            "503": _unavailable(" or `READONLY=true`"),
        },
        secured=True,
    )
    access = token("A new access token for a refresh token.", "refresh_token")
    refresh = token("A refresh token for an authorization code.", "authorization_code")
    return {
        "/v1/api/accessToken": {"post": access},
        "/v1/api/refreshToken": {"post": refresh},
        "/client/register": _with_head(register, "Headers of the authorization URL."),
        "/client/request-new-access-token": {"post": access},
        "/client/request-new-refresh-token": {"post": refresh},
        "/client/verify": _with_head(verify, "Check a bearer token (no body)."),
    }


def _gog_paths() -> dict[str, Schema]:
    def manuscript(summary: str) -> Schema:
        return _operation(
            summary,
            {
                "200": _response(
                    "The entries.",
                    (_LD,),
                    {"type": "array", "items": _ref("GogEntry")},
                    _headers("ETag", "X-Cache", "Link", "Allow"),
                ),
                "400": _text(
                    _BODY_400 + '`The body must be JSON like {"ManuscriptWitness":"witness_uri_here"}.`'
                ),
                "401": _NO_TOKEN,
                "403": _text(_FORBIDDEN_AGENT + ", or `Only the Gallery of Glosses can make this request.`"),
                "413": _413,
                "415": _CHARSET_415,
                "503": _unavailable(
                    ", `READONLY=true` (as the reference), a statement ran into RERUM_STATEMENT_TIMEOUT_MS, or "
                    "the database connection failed"
                ),
            },
            parameters=_page(50),
            body=_json_body(
                {
                    "type": "object",
                    "required": ["ManuscriptWitness"],
                    "properties": {"ManuscriptWitness": {"type": "string", "pattern": "^http"}},
                },
                required=False,
            ),
            secured=True,
            description="For the Gallery of Glosses agent only. 503 also under READONLY, as the reference.",
        )

    gog_object = _operation(
        "An object expanded with its generator's annotations on it.",
        {
            "200": _response(
                "The expanded object.",
                _OBJECT_TYPES,
                _ref("Document"),
                _headers(
                    "ETag",
                    "X-Cache",
                    "Cache-Control",
                    "Current-Overwritten-Version",
                    "Link",
                    "Allow",
                    optional=("Location",),
                ),
            ),
            "304": _NOT_MODIFIED,
            "401": _BAD_SCHEME,
            "403": _text(
                "`This request can only be made for Gallery of Glosses generated data.` + the 403 tail.",
                _headers("X-Cache"),
            ),
            "404": _text("`No RERUM object with id '<id>'` + the 404 tail.", _headers("X-Cache")),
            "503": _READ_503,
        },
        parameters=[_ID],
    )
    return {
        "/gog/fragmentsInManuscript": {"post": manuscript("The WitnessFragments of a manuscript witness.")},
        "/gog/glossesInManuscript": {"post": manuscript("The glosses of a manuscript witness.")},
        "/gog/id/{id}": _with_head(gog_object, "Headers of the expanded object."),
    }


def document(server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for a server whose API lives under ``server_url`` (its origin)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "RERUM v1 API",
            "version": "1.1.0",
            "description": (
                "A store of versioned JSON-LD objects, wire-compatible with the reference RERUM v1 server. "
                "Paths match case-insensitively with an optional trailing slash; the legacy paths "
                "`/v1/api/<name>.action`, `/v1/api/getByProperties` (query) and `/v1/api/batch_create` "
                "(bulkCreate) are rewritten to the current ones. Any method a path does not list answers 405 "
                "with an empty body and an `Allow` header; OPTIONS on any path answers the CORS preflight "
                "(204). Error bodies are text/plain (RERUM's literal messages and tails) unless stated. An "
                "Authorization header not starting with `Bearer ` turns any error into 401. Any request with "
                "a JSON or text/plain body has it parsed first, whatever the path: malformed → 400, too large → "
                "413, a charset that is not UTF → 415. With `DOWN=true` every path but `/` and `/context.json` "
                "answers 503."
            ),
        },
        "servers": [{"url": server_url}],
        "paths": {
            **_page_paths(),
            **_read_paths(),
            **_cache_paths(),
            **_write_paths(),
            **_client_paths(),
            **_gog_paths(),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "`rerum token --agent URI` prints one for a local server.",
                },
            },
        },
    }


_served: dict[str, bytes] = {}


async def openapi_json(request: Request, services: Services) -> Response:
    """``GET /v1/openapi.json``: the document, built once per worker (per public base)."""
    prefix = services.settings.rerum_prefix
    body = _served.get(prefix)
    if body is None:
        origin = prefix.removesuffix("/").removesuffix("/v1")
        body = _served[prefix] = orjson.dumps(document(origin))
    return Response(200, body, [("Cache-Control", "no-cache")], JSON)

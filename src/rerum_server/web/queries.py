"""Query and search endpoints: parse the request, call ``Reads``, render."""

from __future__ import annotations

from typing import Any

from rerum_server import errors
from rerum_server.answers import JSON
from rerum_server.cache.query_stamps import query_stamps
from rerum_server.query.compile import SqlFilter, compile_filter
from rerum_server.query.parse import And, parse_filter
from rerum_server.query.search import phrase_search, slop_option, word_search
from rerum_server.web.bodies import is_empty_json, pagination, require_content_type
from rerum_server.web.context import Services
from rerum_server.web.http import Request, Response
from rerum_server.web.objects import cached_response

EMPTY_QUERY = (
    "Detected empty JSON object.  You must provide at least one property in the /query request body JSON."
)
NO_MATCH = "There are no objects in the database matching the query. Check the request body."
NO_SEARCH_TEXT = "You did not provide text to search for in the search request."
NOT_TEXT = 'The text to search for must be a string: send text/plain or {"searchText": "..."}.'
DEFAULT_LIMIT = 100


def _page(request: Request, services: Services) -> tuple[int, int]:
    return pagination(request, DEFAULT_LIMIT, services.settings.max_limit, services.settings.max_skip)


async def _run_query(request: Request, services: Services, body: Any) -> Response:
    parsed = And(()) if body is None else parse_filter(body)
    where: SqlFilter = compile_filter(parsed)
    limit, skip = _page(request, services)
    stamps = query_stamps(parsed, selective=services.settings.cache_selective_queries)
    answered = await services.reads.query(where, limit, skip, identity=body, stamps=stamps)
    return cached_response(answered)


async def query(request: Request, services: Services) -> Response:
    """``POST /v1/api/query``: a MongoDB filter, answered in insertion order."""
    require_content_type(request)
    body: Any = request.body if request.body_kind == "json" else {}
    if not body or is_empty_json(body):
        raise errors.BadRequest(EMPTY_QUERY)
    if not isinstance(body, dict):
        raise errors.BadRequest("The query must be a JSON object (a MongoDB filter), not an array.")
    return await _run_query(request, services, body)


async def head_query(request: Request, services: Services) -> Response:
    """``HEAD /v1/api/query``: the size of the POST answer; without a JSON body, every document matches."""
    body = request.body if request.body_kind == "json" and not is_empty_json(request.body) else None
    response = await _run_query(request, services, body)
    if response.body == b"[]":
        error = errors.NotFound(NO_MATCH)
        error.headers.append(("X-Cache", response.header("X-Cache") or ""))
        raise error
    return Response(200, response.body, [("X-Cache", response.header("X-Cache") or "")], JSON)


def _search_text(request: Request) -> tuple[str, Any]:
    """``searchText`` (or the whole body) and ``options``, as the reference reads them."""
    require_content_type(request, text_allowed=True)
    options = None
    text: Any = request.body
    if request.body_kind == "json" and isinstance(request.body, dict):
        text = request.body.get("searchText")
        options = request.body.get("options")
        text = request.body if text is None else text
    if not text:
        raise errors.BadRequest(NO_SEARCH_TEXT)
    if not isinstance(text, str):
        raise errors.BadRequest(NOT_TEXT)
    return text, options


async def search(request: Request, services: Services) -> Response:
    """``POST /v1/api/search``: documents containing any of the words, best first."""
    text, _options = _search_text(request)
    limit, skip = _page(request, services)
    return cached_response(await services.reads.search(word_search(text), limit, skip))


async def search_phrase(request: Request, services: Services) -> Response:
    """``POST /v1/api/search/phrase``: documents containing the phrase (``options.slop``, default 2)."""
    text, options = _search_text(request)
    limit, skip = _page(request, services)
    return cached_response(
        await services.reads.search(phrase_search(text, slop_option(options)), limit, skip)
    )

"""GET|HEAD of one object and of its version tree."""

from __future__ import annotations

from rerum_server import errors
from rerum_server.answers import Answer
from rerum_server.web.conditional import etag_of
from rerum_server.web.context import Services
from rerum_server.web.http import Request, Response


def answer_response(answer: Answer, status: int = 200, *, strong_etag: bool = False) -> Response:
    """A response carrying an answer, with its ETag."""
    headers = [*answer.headers, ("ETag", etag_of(answer.body, strong=strong_etag))]
    return Response(status, answer.body, headers, answer.content_type)


def cached_response(answered: tuple[Answer, str], *, strong_etag: bool = False) -> Response:
    """The response of a cacheable read, with ``X-Cache``; a cached "not found" is raised as the 404."""
    answer, cache_status = answered
    if answer.not_found is not None:
        error = errors.NotFound(answer.not_found)
        error.headers.append(("X-Cache", cache_status))
        raise error
    response = answer_response(answer, strong_etag=strong_etag)
    response.headers.append(("X-Cache", cache_status))
    return response


async def get_object(request: Request, services: Services) -> Response:
    # no-cache + strong ETag: clients revalidate every time (the reference's day-long max-age let
    # browsers serve stale objects) and a 304 still saves the body.
    response = cached_response(await services.reads.object(request.params["id"]), strong_etag=True)
    response.headers.append(("Cache-Control", "no-cache"))
    return response


async def get_history(request: Request, services: Services) -> Response:
    return cached_response(await services.reads.history(request.params["id"]))


async def get_since(request: Request, services: Services) -> Response:
    return cached_response(await services.reads.since(request.params["id"]))

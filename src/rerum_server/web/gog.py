"""Gallery of Glosses endpoints (spec 9): two manuscript aggregations for the GoG agent, one expanded object."""

from __future__ import annotations

from rerum_server import errors
from rerum_server.query import gog
from rerum_server.web.bodies import pagination
from rerum_server.web.context import Services
from rerum_server.web.http import Request, Response
from rerum_server.web.objects import cached_response

GOG_ONLY = "Only the Gallery of Glosses can make this request."
BAD_BODY = 'The body must be JSON like {"ManuscriptWitness":"witness_uri_here"}.'
NOT_GOG_DATA = "This request can only be made for Gallery of Glosses generated data."
DEFAULT_LIMIT = 50


async def _manuscript_request(request: Request, services: Services) -> tuple[str, str, int, int]:
    """The witness URI, the agent and the page of a manuscript aggregation, in the reference's order of
    checks: token (and READONLY), GoG agent (403), body (400; also for no body, where the reference 500s)."""
    agent = await services.agent(request)
    if not gog.is_gog_agent(agent):
        raise errors.Forbidden(GOG_ONLY)
    body = request.body if request.body_kind == "json" else None
    witness = body.get("ManuscriptWitness") if isinstance(body, dict) else None
    if not isinstance(witness, str) or not witness.startswith("http"):
        raise errors.BadRequest(BAD_BODY)
    settings = services.settings
    limit, skip = pagination(request, DEFAULT_LIMIT, settings.max_limit, settings.max_skip)
    return witness, agent, limit, skip


async def fragments_in_manuscript(request: Request, services: Services) -> Response:
    """``POST /gog/fragmentsInManuscript``: ``[{"@id", "@type": "WitnessFragment"}]``."""
    witness, agent, limit, skip = await _manuscript_request(request, services)
    return cached_response(await services.reads.gog_fragments(witness, agent, limit, skip))


async def glosses_in_manuscript(request: Request, services: Services) -> Response:
    """``POST /gog/glossesInManuscript``: ``[{"@id", "@type": "Gloss"}]``."""
    witness, agent, limit, skip = await _manuscript_request(request, services)
    return cached_response(await services.reads.gog_glosses(witness, agent, limit, skip))


async def get_gog_object(request: Request, services: Services) -> Response:
    """``GET|HEAD /gog/id/{id}``: the expanded object, with the headers of ``/v1/id`` but no Last-Modified."""
    answer, cache_status = await services.reads.gog_object(request.params["id"])
    if answer.not_found is None and not answer.body:
        error = errors.Forbidden(NOT_GOG_DATA)
        error.headers.append(("X-Cache", cache_status))
        raise error
    # As /v1/id: revalidate every time (the reference's day-long max-age served stale objects).
    response = cached_response((answer, cache_status), strong_etag=True)
    response.headers.append(("Cache-Control", "no-cache"))
    return response

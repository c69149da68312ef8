"""Write endpoints: authenticate, check the content type and body shape, call ``Writes``, render."""

from __future__ import annotations

from typing import Any

import orjson

from rerum_server import errors
from rerum_server.answers import JSON, object_answer
from rerum_server.versioning.metadata import Document, negotiate
from rerum_server.web.bodies import is_empty_json, json_body
from rerum_server.web.context import Services
from rerum_server.web.http import Request, Response
from rerum_server.web.objects import answer_response
from rerum_server.writes import PATCH, SET, UNSET, Edit, declares_identifier

NOT_AN_ARRAY = "The request body must be an array of objects."
EMPTY_ARRAY = "No action on an empty array."
BULK_CREATE_GATE = "All objects in the body of a `/bulkCreate` must be JSON and must not contain a declared identifier property."
BULK_UPDATE_GATE = (
    "All objects in the body of a `/bulkUpdate` must be JSON and must contain a declared identifier property."
)
OVERRIDE_PHRASES = {
    "patch": "Improper request method for updating, please use PATCH to alter existing keys on this object.",
    "set": "Improper request method for updating, please use PATCH to add new keys to this object.",
    "unset": "Improper request method for updating, please use PATCH to remove keys from this object.",
}


def _mutation_response(doc: Document, services: Services, status: int = 200) -> Response:
    prefix = services.settings.naming.id_prefix
    answer = object_answer(doc, prefix, extra={"new_obj_state": negotiate(doc, prefix)})
    return answer_response(answer, status)


def _bulk_response(docs: list[Document], services: Services, status: int) -> Response:
    prefix = services.settings.naming.id_prefix
    body = orjson.dumps([negotiate(doc, prefix) for doc in docs])
    links = [("Link", doc["@id"]) for doc in docs]
    return Response(status, body, links, JSON)


def _slug(request: Request) -> str | None:
    slug = request.header("slug")
    if slug is None:
        return None
    slug = slug.strip()
    if not slug or "/" in slug or len(slug) > 255:
        raise errors.BadRequest("The Slug header must be 1 to 255 characters without '/'.")
    return slug


def _object_body(body: Any, message: str) -> Document:
    if not isinstance(body, dict):
        raise errors.BadRequest(message)
    return body


def _bulk_items(body: Any, services: Services, *, must_declare_id: bool) -> list[Document]:
    """RERUM's bulk gatekeeping; ``{}`` and falsy scalars are skipped, everything else must be an object.

    At most ``RERUM_MAX_BULK_ITEMS`` elements: the answer carries one ``Link`` header line per object,
    and header blocks of more than 64-100 kB are refused by common clients and proxies.
    """
    if not isinstance(body, list):
        raise errors.BadRequest(NOT_AN_ARRAY)
    if not body:
        raise errors.BadRequest(EMPTY_ARRAY)
    limit = services.settings.max_bulk_items
    if len(body) > limit:
        raise errors.PayloadTooLarge(
            f"A bulk request may carry at most {limit} objects (this one has {len(body)}); "
            "send them in several requests."
        )
    gate = BULK_UPDATE_GATE if must_declare_id else BULK_CREATE_GATE
    items = []
    for element in body:
        if not isinstance(element, dict | list) and element is not None and not element:
            continue  # JavaScript-falsy scalars (0, false, "") are skipped, as the reference does
        if not isinstance(element, dict) or declares_identifier(element) != must_declare_id:
            raise errors.BadRequest(gate)
        if element:
            items.append(element)
    return items


async def create(request: Request, services: Services) -> Response:
    agent = await services.agent(request)
    body = json_body(request)
    if not body or is_empty_json(body):
        raise errors.BadRequest(
            "Detected empty JSON object.  You must provide at least one property in the /create request body JSON."
        )
    body = _object_body(body, "The /create request body must be a JSON object, not an array.")
    doc = await services.writes.create(body, agent, _slug(request))
    return _mutation_response(doc, services, 201)


async def bulk_create(request: Request, services: Services) -> Response:
    agent = await services.agent(request)
    items = _bulk_items(json_body(request), services, must_declare_id=False)
    docs = await services.writes.bulk_create(items, agent) if items else []
    return _bulk_response(docs, services, 201)


async def update(request: Request, services: Services) -> Response:
    agent = await services.agent(request)
    body = _object_body(json_body(request), "Object in request body must have an 'id' or '@id' property. ")
    return _mutation_response(await services.writes.update(body, agent), services)


async def bulk_update(request: Request, services: Services) -> Response:
    agent = await services.agent(request)
    items = _bulk_items(json_body(request), services, must_declare_id=True)
    docs = await services.writes.bulk_update(items, agent) if items else []
    return _bulk_response(docs, services, 200)


def _edit_handler(kind: Edit) -> Any:
    async def handle(request: Request, services: Services) -> Response:
        agent = await services.agent(request)
        body = json_body(request)
        if request.method == "POST" and request.header("x-http-method-override") != "PATCH":
            raise errors.MethodNotAllowed(OVERRIDE_PHRASES[kind.name], "PATCH, POST")
        body = _object_body(body, "Object in request body must have the property '@id' or 'id'. ")
        return _mutation_response(await services.writes.edit(kind, body, agent), services)

    handle.__name__ = kind.name
    return handle


patch = _edit_handler(PATCH)
set_keys = _edit_handler(SET)
unset_keys = _edit_handler(UNSET)


async def overwrite(request: Request, services: Services) -> Response:
    agent = await services.agent(request)
    body = _object_body(json_body(request), "Object in request body must have the property '@id' or 'id'. ")
    doc = await services.writes.overwrite(body, agent, request.header("if-overwritten-version"))
    response = _mutation_response(doc, services)
    response.headers.append(("Current-Overwritten-Version", doc["__rerum"]["isOverwritten"]))
    return response


async def delete(request: Request, services: Services) -> Response:
    agent = await services.agent(request)
    await services.writes.delete(request.params["id"], agent)
    return Response(204)


async def release(request: Request, services: Services) -> Response:
    agent = await services.agent(request)
    doc = await services.writes.release(request.params["id"], agent, _slug(request))
    return _mutation_response(doc, services)

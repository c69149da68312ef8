"""THE place a read is answered.

Each read returns an ``Answer``: the exact response body plus the header facts that depend on the
data (content type, Link, Location, Last-Modified, Current-Overwritten-Version). The web layer adds
what depends only on the request (ETag, 304, CORS, worker). Because the whole answer is a value, a
cache can store it and a hit can rebuild the same bytes and headers as a miss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg
import orjson

from rerum_server import errors
from rerum_server.store import documents
from rerum_server.versioning import history
from rerum_server.versioning.metadata import Document, is_deleted, negotiate, outbound_id

if TYPE_CHECKING:
    from rerum_server.query.compile import SqlFilter
    from rerum_server.query.search import SearchRequest

JSON = "application/json; charset=utf-8"
JSON_LD = 'application/ld+json; charset=utf-8; profile="http://www.w3.org/ns/anno.jsonld"'
LD_CONTEXT_LINK = (
    '<http://store.rerum.io/v1/context.json>; rel="http://www.w3.org/ns/json-ld#context"; '
    'type="application/ld+json"'
)
RESOURCE_LINK = '<http://www.w3.org/ns/ldp#Resource>; rel="type"'
CONTAINER_LINK = 'application/ld+json;charset=utf-8;profile="http://www.w3.org/ns/anno.jsonld"'
CONTAINER_TYPES = (
    "ItemList",
    "AnnotationPage",
    "AnnotationList",
    "AnnotationCollection",
    "Sequence",
    "Range",
    "Canvas",
    "List",
    "Set",
    "Collection",
)


@dataclass(frozen=True)
class Answer:
    """A successful read: body bytes and the data-dependent headers."""

    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = field(default=())


def _is_container(doc: Document) -> bool:
    kind = doc.get("@type", doc.get("type"))
    if isinstance(kind, str):
        return any(name in kind for name in CONTAINER_TYPES)
    if isinstance(kind, list):
        return any(item in CONTAINER_TYPES for item in kind)
    return False  # the reference crashed with 500 on numbers and objects


def last_modified(doc: Document) -> str | None:
    """RFC 1123 date of the last change, read as UTC (the reference used the host's local zone)."""
    if is_deleted(doc):
        stamp = doc["__deleted"].get("time")
    else:
        rerum = doc.get("__rerum") or {}
        stamp = rerum.get("isOverwritten") or rerum.get("createdAt")
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.strptime(stamp.split(".", 1)[0], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


def object_answer(doc: Document, id_prefix: str, *, extra: Document | None = None) -> Answer:
    """The single-object response of GET id and of every mutation (``extra`` adds ``new_obj_state``)."""
    out = negotiate(doc, id_prefix)
    body = out if extra is None else out | extra
    headers = [
        ("Link", CONTAINER_LINK if _is_container(doc) else RESOURCE_LINK),
        ("Allow", "GET,OPTIONS,HEAD,PUT,PATCH,DELETE,POST"),
    ]
    location = outbound_id(doc, id_prefix)
    if location is not None:
        headers.append(("Location", location))
    return Answer(orjson.dumps(body), JSON_LD if doc.get("@context") else JSON, tuple(headers))


def list_answer(docs: list[Document], id_prefix: str) -> Answer:
    """An array response with RERUM's "LD headers" (query, since, history, search)."""
    return ld_answer([negotiate(doc, id_prefix) for doc in docs])


def ld_answer(items: list[Document]) -> Answer:
    """An array of already negotiated documents with RERUM's "LD headers"."""
    body = orjson.dumps(items)
    return Answer(
        body, JSON_LD, (("Allow", "GET,OPTIONS,HEAD,PUT,PATCH,DELETE,POST"), ("Link", LD_CONTEXT_LINK))
    )


class Reads:
    """All read operations over the worker's pool."""

    def __init__(self, pool: asyncpg.Pool, id_prefix: str) -> None:
        self.pool = pool
        self.id_prefix = id_prefix

    async def object(self, key: str) -> Answer:
        """``GET /v1/id/{key}``: the object by ``_id`` or slug (a deleted one as its shell)."""
        async with self.pool.acquire() as connection:
            doc = await documents.find(connection, key)
        if doc is None:
            raise errors.NotFound(f"No RERUM object with id '{key}'")
        answer = object_answer(doc, self.id_prefix)
        facts = [("Current-Overwritten-Version", (doc.get("__rerum") or {}).get("isOverwritten", "") or "")]
        modified = last_modified(doc)
        if modified is not None:
            facts.append(("Last-Modified", modified))
        return Answer(answer.body, answer.content_type, answer.headers + tuple(facts))

    async def history(self, key: str) -> Answer:
        """``GET /v1/history/{key}``: ancestors, nearest first."""
        node, tree = await self._tree_of(key)
        return list_answer(history.ancestors(node, tree), self.id_prefix)

    async def since(self, key: str) -> Answer:
        """``GET /v1/since/{key}``: descendants, depth-first."""
        node, tree = await self._tree_of(key)
        return list_answer(history.descendants(node, tree), self.id_prefix)

    async def query(self, where: SqlFilter, limit: int, skip: int) -> list[Document]:
        """``POST|HEAD /v1/api/query``: documents matching a compiled filter, in insertion order."""
        async with self.pool.acquire() as connection:
            return await documents.matching(connection, where.sql, where.params, limit, skip)

    async def search(self, request: SearchRequest, limit: int, skip: int) -> Answer:
        """``POST /v1/api/search[/phrase]``: ranked hits, each with ``__rerum.score``."""
        if not request.tsquery:
            return ld_answer([])
        async with self.pool.acquire() as connection:
            hits = await documents.search(connection, request.tsquery, limit, skip)
        items = []
        for doc, score in hits:
            item = negotiate(doc, self.id_prefix)
            if isinstance(item.get("__rerum"), dict):
                item["__rerum"] = item["__rerum"] | {"score": score}
            items.append(item)
        return ld_answer(items)

    async def _tree_of(self, key: str) -> tuple[Document, list[Document]]:
        async with (
            self.pool.acquire() as connection,
            connection.transaction(readonly=True, isolation="repeatable_read"),
        ):
            node = await documents.find(connection, key)
            if node is None:
                raise errors.NotFound(
                    f"Cannot produce a history. There is no object in the database with id '{key}'.  Check the URL."
                )
            if is_deleted(node):
                raise errors.NotFound(f"Cannot produce a history. The object with id '{key}' is deleted.")
            root_id = history.tree_root_id(node)
            root = node if root_id == node["_id"] else await documents.find(connection, root_id or "")
            return node, ([node] if root is None else await documents.tree(connection, root))

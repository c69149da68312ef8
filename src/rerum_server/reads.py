"""THE place a read is answered: key + stamps → cache → store → fill.

Every cacheable read names its entry (a digest of the endpoint and its normalised parameters) and
the stamps its answer depends on, then goes through ``_through_cache``:

1. one round trip (the read script) returns the entry if it is valid, else the generations of its
   stamps as they are *before* the database read, and whether this reader may fill;
2. on a miss, the database answers;
3. the fill script stores that answer only if no generation moved and no fence appeared since 1.

So an answer read before a write's COMMIT can never be stored after the write's response (the write
changes the generations before COMMIT and again before it responds). With Redis unavailable the read
is answered from the database (``BYPASS``); a reader never waits for Redis longer than its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncpg

from rerum_server import errors
from rerum_server.answers import Answer, last_modified, ld_answer, list_answer, not_found, object_answer
from rerum_server.cache import codec
from rerum_server.cache.client import CacheClient, CacheUnavailable
from rerum_server.cache.keys import read_digest
from rerum_server.cache.stamps import (
    ALL,
    ALL_QUERIES,
    SEARCHES,
    UNSELECTIVE_QUERIES,
    object_stamps,
    tree_stamps,
)
from rerum_server.query import compile_filter, gog, parse_filter
from rerum_server.store import documents
from rerum_server.versioning import history
from rerum_server.versioning.metadata import Document, is_deleted, negotiate

if TYPE_CHECKING:
    from rerum_server.query.compile import SqlFilter
    from rerum_server.query.search import SearchRequest

HIT, MISS, BYPASS = "HIT", "MISS", "BYPASS"
# A query first lists up to this many matches through the GIN index (see documents.matching): the
# planner cannot estimate `doc @@ ...` and would otherwise walk the whole table in seq order.
QUERY_PROBE = 1000
_LEASE_POLLS = 10
_LEASE_POLL_S = 0.005
QUERY_TIMEOUT = (
    "The query took longer than the database allows (RERUM_STATEMENT_TIMEOUT_MS) and was cancelled.  "
    "Add an equality on a selective field, or split the query."
)
_NO_HISTORY = "Cannot produce a history. There is no object in the database with id '{}'.  Check the URL."

Probe = Callable[[str], Awaitable[None]]


async def _no_probe(point: str) -> None:
    return None


class Reads:
    """All read operations over the worker's pool, through the cache when one is configured."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        id_prefix: str,
        cache: CacheClient | None = None,
        *,
        max_entry_bytes: int = 1 << 20,
        probe: Probe = _no_probe,
    ) -> None:
        self.pool = pool
        self.id_prefix = id_prefix
        self.cache = cache
        self.max_entry_bytes = max_entry_bytes
        self._probe = probe  # pause points for tests that drive interleavings; a no-op otherwise

    @contextlib.asynccontextmanager
    async def _snapshot(self, *, exact_lookups: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A connection in a read-only REPEATABLE READ transaction: every statement of one answer sees
        the store at one moment. ``exact_lookups``: the statements look for exact URIs, which the planner
        cannot tell from common values, so only index scans are allowed (see documents.prefer_bitmap_scans).
        """
        async with (
            self.pool.acquire() as connection,
            connection.transaction(readonly=True, isolation="repeatable_read"),
        ):
            if exact_lookups:
                await documents.prefer_bitmap_scans(connection)
            yield connection

    async def _through_cache(
        self, endpoint: str, identity: object, stamps: list[str], load: Callable[[], Awaitable[Answer]]
    ) -> tuple[Answer, str]:
        """Answer from a valid entry, or from ``load`` (filling the entry when that is provably safe).

        ``identity`` is everything the answer is a function of besides the stored data (the endpoint's
        normalised parameters); ``stamps`` name the stored data it depends on.
        """
        if self.cache is None:
            return await load(), BYPASS
        digest = read_digest(endpoint, identity)
        stamps = [ALL, *stamps] if ALL not in stamps else stamps
        lease = secrets.token_hex(16)
        try:
            seen = await self.cache.read(digest, stamps, endpoint, lease_token=lease, count=True)
            for _ in range(_LEASE_POLLS):
                if seen.hit or seen.fill != 2:
                    break
                # Another reader is filling this entry: wait briefly for it rather than all reading
                # the database at once; never answer with an older value meanwhile.
                await asyncio.sleep(_LEASE_POLL_S)
                seen = await self.cache.read(digest, stamps, endpoint, lease_token=lease, count=False)
        except CacheUnavailable:
            self.cache.count_later("bypasses")
            return await load(), BYPASS
        if seen.hit and seen.value is not None:
            return codec.decode(seen.value), HIT
        answer = await load()
        await self._probe("read:after-database")
        if seen.fill == 1 and answer.cacheable:
            value = codec.encode(answer)
            if len(value) <= self.max_entry_bytes:
                # A failed fill leaves the answer correct; only the entry is not stored.
                with contextlib.suppress(CacheUnavailable):
                    await self.cache.fill(
                        digest, stamps, seen.generations, value, lease, ttl_ms=self.cache.entry_ttl(endpoint)
                    )
        return answer, MISS

    # ------------------------------------------------------------------ objects and trees

    async def object(self, key: str) -> tuple[Answer, str]:
        """``GET /v1/id/{key}``: the object by ``_id`` or slug (a deleted one as its shell)."""
        return await self._through_cache("id", key, object_stamps(key), lambda: self._load_object(key))

    async def _load_object(self, key: str) -> Answer:
        async with self.pool.acquire() as connection:
            doc = await documents.find(connection, key)
        if doc is None:
            return not_found(f"No RERUM object with id '{key}'")
        answer = object_answer(doc, self.id_prefix)
        facts = [("Current-Overwritten-Version", (doc.get("__rerum") or {}).get("isOverwritten", "") or "")]
        modified = last_modified(doc)
        if modified is not None:
            facts.append(("Last-Modified", modified))
        return Answer(answer.body, answer.content_type, answer.headers + tuple(facts))

    async def history(self, key: str) -> tuple[Answer, str]:
        """``GET /v1/history/{key}``: ancestors, nearest first."""
        return await self._tree_read("history", key, history.ancestors)

    async def since(self, key: str) -> tuple[Answer, str]:
        """``GET /v1/since/{key}``: descendants, depth-first."""
        return await self._tree_read("since", key, history.descendants)

    async def _tree_read(
        self, endpoint: str, key: str, walk: Callable[[Document, list[Document]], list[Document]]
    ) -> tuple[Answer, str]:
        # The tree a key belongs to is only known from the database, and the stamps must be known
        # before the read whose answer is stored: find the root first, then read the tree and store
        # the answer only if the tree still has that root.
        async with self.pool.acquire() as connection:
            node = await documents.find(connection, key)
        root = None if node is None else history.tree_root_id(node)

        async def load() -> Answer:
            loaded = await self._load_tree(key)
            if isinstance(loaded, Answer):
                return loaded
            node, tree = loaded
            answer = list_answer(walk(node, tree), self.id_prefix)
            if history.tree_root_id(node) != root:
                return Answer(answer.body, answer.content_type, answer.headers, cacheable=False)
            return answer

        return await self._through_cache(endpoint, key, tree_stamps(key, root), load)

    async def _load_tree(self, key: str) -> tuple[Document, list[Document]] | Answer:
        async with self._snapshot() as connection:
            node = await documents.find(connection, key)
            if node is None:
                return not_found(_NO_HISTORY.format(key))
            if is_deleted(node):
                return not_found(f"Cannot produce a history. The object with id '{key}' is deleted.")
            root_id = history.tree_root_id(node)
            root = node if root_id == node["_id"] else await documents.find(connection, root_id or "")
            return node, ([node] if root is None else await documents.tree(connection, root))

    # ------------------------------------------------------------------ queries and searches

    async def query(
        self,
        where: SqlFilter,
        limit: int,
        skip: int,
        *,
        identity: object,
        stamps: list[str],
        endpoint: str = "query",
    ) -> tuple[Answer, str]:
        """``POST|HEAD /v1/api/query``: documents matching a compiled filter, in insertion order."""

        async def load() -> Answer:
            # One snapshot: the index probe and the page fetch are two statements, and an answer must
            # show the store at one moment (the history checker caught torn answers without it).
            try:
                async with self._snapshot() as connection:
                    docs = await documents.matching(
                        connection, where.sql, where.params, limit, skip, probe=QUERY_PROBE
                    )
            except asyncpg.QueryCanceledError as exc:
                # Within the limits a query can still scan a large table for longer than the statement
                # timeout; it is the query, not the server, that failed (a 500 said neither).
                raise errors.ServiceUnavailable(QUERY_TIMEOUT) from exc
            return list_answer(docs, self.id_prefix)

        return await self._through_cache(endpoint, [identity, limit, skip], stamps, load)

    async def search(self, request: SearchRequest, limit: int, skip: int) -> tuple[Answer, str]:
        """``POST /v1/api/search[/phrase]``: ranked hits, each with ``__rerum.score``."""
        endpoint = "phrase" if request.phrase else "search"

        async def load() -> Answer:
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

        identity = [request.tsquery, request.slop, limit, skip]
        return await self._through_cache(endpoint, identity, [SEARCHES], load)

    # ------------------------------------------------------------------ Gallery of Glosses

    # A GoG answer joins documents found by several conditions, so no equality stamp covers it: it
    # depends on every query stamp (the unselective one changes with every write). Each read is one
    # snapshot (its stages must agree) in which the planner only uses the indexes: every stage looks
    # for exact URIs, which the planner cannot tell from common values (see documents.prefer_bitmap_scans).
    _GOG_STAMPS = (ALL_QUERIES, UNSELECTIVE_QUERIES)

    async def gog_fragments(self, manuscript: str, agent: str, limit: int, skip: int) -> tuple[Answer, str]:
        """``POST /gog/fragmentsInManuscript``: the current WitnessFragments that one page (in ``_id``
        order) of the agent's current annotations places in the manuscript witness."""

        async def load() -> Answer:
            async with self._snapshot(exact_lookups=True) as connection:
                annotations = await self._gog_page(connection, manuscript, agent, limit, skip)
                found = await self._gog_lookup(
                    connection, gog.target_uris(annotations), lambda uris: gog.fragments(uris, leaf_only=True)
                )
            return ld_answer(gog.fragment_entries(annotations, found))

        identity = ["fragments", manuscript, agent, limit, skip]
        return await self._through_cache("gog", identity, list(self._GOG_STAMPS), load)

    async def gog_glosses(self, manuscript: str, agent: str, limit: int, skip: int) -> tuple[Answer, str]:
        """``POST /gog/glossesInManuscript``: the glosses referenced by annotations on the WitnessFragments
        that one page of the agent's annotations places in the manuscript witness."""

        async def load() -> Answer:
            async with self._snapshot(exact_lookups=True) as connection:
                annotations = await self._gog_page(connection, manuscript, agent, limit, skip)
                found = await self._gog_lookup(
                    connection,
                    gog.target_uris(annotations),
                    lambda uris: gog.fragments(uris, leaf_only=False),
                )
                fragment_uris = [entry["@id"] for entry in gog.fragment_entries(annotations, found)]
                glossing = await self._gog_lookup(connection, fragment_uris, gog.gloss_references)
            return ld_answer(gog.gloss_entries(fragment_uris, glossing))

        identity = ["glosses", manuscript, agent, limit, skip]
        return await self._through_cache("gog", identity, list(self._GOG_STAMPS), load)

    async def gog_object(self, key: str) -> tuple[Answer, str]:
        """``GET /gog/id/{key}``: the object expanded with its generator's current annotations on it.

        An answer with an empty body and no 404 message means "not Gallery of Glosses data" (the handler
        answers 403): like a 404 it depends only on the object, so it is cached under the same stamps.
        """

        async def load() -> Answer:
            async with self._snapshot(exact_lookups=True) as connection:
                obj = await documents.find(connection, key)
                if obj is None:
                    return not_found(f"No RERUM object with id '{key}'")
                if not gog.is_gog_data(obj):
                    return Answer(b"", "")
                # A deleted object is answered as its shell, as /v1/id does: nothing describes it any more.
                annotations = (
                    []
                    if is_deleted(obj)
                    else await self._gog_all(connection, gog.describing_annotations(obj))
                )
            answer = object_answer(gog.expand(obj, annotations), self.id_prefix)
            overwritten = (obj.get("__rerum") or {}).get("isOverwritten", "")
            version = overwritten if isinstance(overwritten, str) else ""
            return Answer(
                answer.body, answer.content_type, (*answer.headers, ("Current-Overwritten-Version", version))
            )

        stamps = [*object_stamps(key), *self._GOG_STAMPS]
        return await self._through_cache("gog", ["id", key], stamps, load)

    async def _gog_page(
        self, connection: asyncpg.Connection, manuscript: str, agent: str, limit: int, skip: int
    ) -> list[Document]:
        # The reference sorts this stage by _id before skip/limit, so pages are stable.
        where = compile_filter(parse_filter(gog.manuscript_annotations(manuscript, agent)))
        return await documents.matching(connection, where.sql, where.params, limit, skip, order_by_id=True)

    async def _gog_all(self, connection: asyncpg.Connection, mongo_filter: dict[str, Any]) -> list[Document]:
        where = compile_filter(parse_filter(mongo_filter))
        return await documents.all_matching(connection, where.sql, where.params)

    async def _gog_lookup(
        self,
        connection: asyncpg.Connection,
        uris: list[str],
        condition: Callable[[list[str]], dict[str, Any]],
    ) -> list[Document]:
        """The documents ``condition`` selects for any of ``uris`` (a ``$lookup``), one index-served query
        per chunk of URIs, each document once."""
        found: dict[str, Document] = {}
        for chunk in gog.chunks(uris):
            for doc in await self._gog_all(connection, condition(chunk)):
                found.setdefault(doc["_id"], doc)
        return list(found.values())

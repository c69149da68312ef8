"""Index use at scale: EXPLAIN of the SQL that /query, /search and the GoG reads run, on 100,000 documents.

A fresh database gets realistic ~1 KB annotations (a target, a text body, a version tree, a type, a
generator), is ANALYZEd, and then each statement is captured from the store function that runs it (a
recording connection) and explained with its real parameters. Every value asked for is selective — for a
value most documents share, a sequential scan is the right plan, not a defect.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import orjson
import pytest

from rerum_server.query import SqlFilter, compile_filter, parse_filter
from rerum_server.query.search import phrase_search, word_search
from rerum_server.reads import Reads
from rerum_server.store import documents
from rerum_server.store.migrate import migrate
from tests.support.database import DatabaseServer

DOCUMENTS = 100_000
PREFIX = "https://store.example.org/v1/id/"
TYPES = ["Annotation"] * 90 + ["oa:Annotation"] * 8 + ["AnnotationPage", "sc:Manifest"]
GOG_AGENT = "https://store.rerum.io/v1/id/61043ad4ffce846a83e700dd"
# 0.5% of the documents each; the first agent is the Gallery of Glosses
AGENTS = [GOG_AGENT] + [f"https://store.example.org/v1/id/agent{n:04d}" for n in range(1, 200)]


class Recording:
    """A real connection that records every statement it runs, with the planner settings then in force."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self.statements: list[tuple[str, tuple[Any, ...], tuple[str, str]]] = []

    async def _record(self, sql: str, args: tuple[Any, ...]) -> None:
        settings = await self.connection.fetchrow(
            "SELECT current_setting('enable_seqscan') AS s, current_setting('enable_indexscan') AS i"
        )
        self.statements.append((sql, args, (settings["s"], settings["i"])))

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        await self._record(sql, args)
        return await self.connection.fetch(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        await self._record(sql, args)
        return await self.connection.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        return await self.connection.execute(sql, *args)

    def transaction(self, **options: Any) -> Any:
        return self.connection.transaction(**options)


class OnePool:
    """What ``Reads`` needs of a pool: ``acquire()`` handing out the one recording connection."""

    def __init__(self, connection: Recording) -> None:
        self.connection = connection

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Recording]:
        yield self.connection


def _vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(5000)]


def _rows(rng: random.Random) -> list[tuple[str, str, str]]:
    words = _vocabulary(rng)
    rows = []
    roots: list[str] = []
    for n in range(DOCUMENTS):
        object_id = f"{n:024x}"
        is_version = roots and rng.random() < 0.3
        prime = rng.choice(roots[-50:]) if is_version else "root"
        doc = {
            "@context": "http://www.w3.org/ns/anno.jsonld",
            "@id": PREFIX + object_id,
            "@type": TYPES[n % len(TYPES)],
            "motivation": "commenting",
            "body": {
                "type": "TextualBody",
                "value": " ".join(rng.choice(words) for _ in range(40)),
                "format": "text/plain",
                "language": "en",
            },
            "target": f"https://example.org/canvas/{n // 4}#xywh={n % 97},{n % 89},120,40",
            "creator": f"https://example.org/people/{n % 1000}",
            "__rerum": {
                "@context": "https://store.example.org/v1/context.json",
                "alpha": True,
                "APIversion": "1.1.0",
                "createdAt": "2025-06-24T10:00:00.123",
                "isOverwritten": "",
                "isReleased": "",
                "history": {"prime": prime, "previous": prime if is_version else "", "next": []},
                "releases": {"previous": "", "next": [], "replaces": ""},
                "generatedBy": AGENTS[n % len(AGENTS)],
            },
            "_id": object_id,
        }
        if not is_version:
            roots.append(PREFIX + object_id)
        text = orjson.dumps(doc).decode()
        rows.append((object_id, text, text))
    return rows


async def _load(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await migrate(connection)
        # A bulk load builds the GIN indexes faster afterwards than row by row; migrating again (forced:
        # the schema's version is installed) recreates them.
        await connection.execute("DROP INDEX rerum_objects_doc, rerum_objects_search")
        rows = _rows(random.Random(7))
        await connection.copy_records_to_table("rerum_objects", records=rows, columns=["id", "body", "doc"])
        await migrate(connection, force=True)
        await connection.execute("ANALYZE rerum_objects")
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def loaded(test_database: DatabaseServer) -> Iterator[str]:
    dsn = test_database.new_database()
    started = time.monotonic()
    asyncio.run(_load(dsn))
    print(f"loaded {DOCUMENTS} documents in {time.monotonic() - started:.1f} s")
    yield dsn


async def _plans(dsn: str, read: Callable[[Reads], Awaitable[Any]]) -> list[dict[str, Any]]:
    """Run ``read`` on a ``Reads`` over a recording connection, then EXPLAIN every statement it sent
    (with its arguments and the planner settings it ran under)."""
    connection = await asyncpg.connect(dsn)
    try:
        recording = Recording(connection)
        await read(Reads(OnePool(recording), PREFIX))  # type: ignore[arg-type]
        plans = []
        for sql, args, (seqscan, indexscan) in recording.statements:
            async with connection.transaction():
                await connection.execute(f"SET LOCAL enable_seqscan = {seqscan}")
                await connection.execute(f"SET LOCAL enable_indexscan = {indexscan}")
                plan = await connection.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)
            plans.append(orjson.loads(plan)[0]["Plan"])
        return plans
    finally:
        await connection.close()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _assert_index_scans(plans: list[dict[str, Any]], index: str) -> None:
    """No statement walks the table, and ``index`` finds the documents."""
    text = orjson.dumps(plans, option=orjson.OPT_INDENT_2).decode()
    nodes = [node for plan in plans for node in _nodes(plan)]
    assert "Seq Scan" not in [node["Node Type"] for node in nodes], text
    used = {
        node.get("Index Name") for node in nodes if node["Node Type"] in ("Bitmap Index Scan", "Index Scan")
    }
    assert index in used, text


def _compiled(mongo_filter: dict[str, Any]) -> SqlFilter:
    return compile_filter(parse_filter(mongo_filter))


SELECTIVE = {
    "target": {"target": "https://example.org/canvas/4242#xywh=69,57,120,40"},
    "body.value": {"body.value": "no body has exactly this value"},
    "prime": {"__rerum.history.prime": PREFIX + f"{5000:024x}"},
    "@type": {"@type": "sc:Manifest"},
    "generatedBy": {"__rerum.generatedBy": AGENTS[17]},
    "$in": {
        "target": {"$in": ["https://example.org/canvas/1", "https://example.org/canvas/2#xywh=2,2,120,40"]}
    },
    "$or": {"$or": [{"@type": "sc:Manifest"}, {"creator": "https://example.org/people/5"}]},
    "and-size": {"@type": "AnnotationPage", "__rerum.history.next": {"$size": 0}},
}


@pytest.mark.parametrize("name", list(SELECTIVE))
def test_query_equalities_are_index_scans(loaded: str, name: str) -> None:
    where = _compiled(SELECTIVE[name])
    plans = asyncio.run(_plans(loaded, lambda reads: reads.query(where, 100, 0, identity=None, stamps=[])))
    _assert_index_scans(plans, "rerum_objects_doc")


@pytest.mark.parametrize("name", list(SELECTIVE))
def test_probed_matching_finds_selective_values_through_the_index(loaded: str, name: str) -> None:
    where = _compiled(SELECTIVE[name])

    async def read(reads: Reads) -> None:
        async with reads.pool.acquire() as connection:
            await documents.matching(connection, where.sql, where.params, 100, 0, probe=1000)

    _assert_index_scans(asyncio.run(_plans(loaded, read)), "rerum_objects_doc")


@pytest.mark.parametrize(
    "mongo_filter",
    [*SELECTIVE.values(), {"@type": "Annotation"}, {"@type": "oa:Annotation", "motivation": "commenting"}],
)
def test_probed_matching_pages_like_the_plain_query(loaded: str, mongo_filter: dict[str, Any]) -> None:
    where = _compiled(mongo_filter)

    async def pages() -> list[list[str]]:
        connection = await asyncpg.connect(loaded)
        try:
            found = []
            for probe in (0, 1000):
                for limit, skip in ((100, 0), (7, 3)):
                    docs = await documents.matching(
                        connection, where.sql, where.params, limit, skip, probe=probe
                    )
                    found.append([doc["_id"] for doc in docs])
            return found
        finally:
            await connection.close()

    plain, plain_page, probed, probed_page = asyncio.run(pages())
    assert (probed, probed_page) == (plain, plain_page)
    assert plain_page == plain[3:10]


@pytest.mark.parametrize("phrase", [False, True], ids=["words", "phrase"])
def test_searches_are_index_scans(loaded: str, phrase: bool) -> None:
    words = " ".join(_vocabulary(random.Random(7))[:2])
    request = phrase_search(words) if phrase else word_search(words)
    plans = asyncio.run(_plans(loaded, lambda reads: reads.search(request, 100, 0)))
    _assert_index_scans(plans, "rerum_objects_search")


def test_gog_reads_are_index_scans(loaded: str) -> None:
    witness = "https://example.org/ms/1"
    for read in (
        lambda reads: reads.gog_fragments(witness, GOG_AGENT, 50, 0),
        lambda reads: reads.gog_glosses(witness, GOG_AGENT, 50, 0),
        lambda reads: reads.gog_object(f"{200 * 25:024x}"),  # generated by the GoG agent: expanded
    ):
        _assert_index_scans(asyncio.run(_plans(loaded, read)), "rerum_objects_doc")

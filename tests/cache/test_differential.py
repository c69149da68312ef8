"""The cache against the database itself: a cached and an uncached server on one PostgreSQL, compared
after every write of a generated sequence.

Writes of every kind (create, bulkCreate, update, bulkUpdate, patch, set, unset, overwrite, delete,
release) go to the cached server, as raw JSON text from ``tests/support/json_space.py`` (numbers in
every spelling and size, keys empty, dotted, ``$``-prefixed or not ASCII, nested arrays, GoG shapes).
After each write's response, reads of every kind (id, query, HEAD query, search, phrase, history,
since, the three GoG reads) go to both servers, and every pair of answers must agree in status and
body. The uncached server (``CACHE_ENABLED=false``) answers from PostgreSQL every time: it is the
oracle. Queries come from a pool that follows the documents written (filters that name their leaves,
spelled differently), so selective invalidation is exercised: most cached answers are hits.

``RERUM_DIFFERENTIAL_WRITES`` and ``RERUM_DIFFERENTIAL_SEED`` run longer or other sequences offline.
The negative control runs the same sequence against a server whose writes forget the stamps of
their number leaves: it must report mismatches.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from rerum_server.cache.query_stamps import cover
from rerum_server.errors import BadRequest
from rerum_server.query.gog import PRODUCTION_AGENT_ID
from rerum_server.query.parse import parse_filter
from tests.support.database import DatabaseServer
from tests.support.json_space import WORDS, Space, dumps
from tests.support.reports import publish
from tests.support.server import RunningServer, scratch

pytestmark = pytest.mark.cluster

WRITES = int(os.environ.get("RERUM_DIFFERENTIAL_WRITES", "500"))
SEED = int(os.environ.get("RERUM_DIFFERENTIAL_SEED", str(secrets.randbits(32))))
READS_PER_WRITE = 40
QUERY_POOL = 120
ID_PREFIX = "http://rerum.test/v1/id/"
AGENT = "http://store.rerum.io/v1/id/" + PRODUCTION_AGENT_ID  # the GoG agent, so GoG reads find data
MANUSCRIPTS = ["http://rerum.test/manuscript/1", "http://rerum.test/manuscript/2"]
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Read:
    method: str
    path: str
    body: str | None = None
    gog: bool = False  # needs the GoG agent's token


@dataclass
class Tally:
    comparisons: int = 0
    hits: int = 0
    writes: int = 0
    refused_writes: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # endpoint: [comparisons, hits]
    mismatches: list[str] = field(default_factory=list)


class Servers:
    """The cached server (2 workers) and the uncached oracle (1 worker) on one fresh database."""

    def __init__(self, test_database: DatabaseServer, name: str, app: str | None = None) -> None:
        database_url = test_database.new_database()
        naming = {"RERUM_ID_PREFIX": ID_PREFIX, "RERUM_PREFIX": "http://rerum.test/v1/"}
        self.cached = RunningServer(
            workers=2,
            data_dir=scratch(f"{name}-cached"),
            database_url=database_url,
            # every answer also kept as the workers' own copy, so those hits are compared too
            env={**naming, "CACHE_LOCAL_MIN_BYTES": "1"},
            app=app,
        )
        try:
            self.uncached = RunningServer(
                workers=1,
                data_dir=scratch(f"{name}-uncached"),
                database_url=database_url,
                env={**naming, "CACHE_ENABLED": "false"},
            )
        except BaseException:
            self.cached.stop()
            raise

        self.auth = {server.url: server.bearer(AGENT) for server in (self.cached, self.uncached)}

    def stop(self) -> None:
        self.cached.stop()
        self.uncached.stop()


class Sequence:
    """The generated writes and the reads after each, from one seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.space = Space(self.rng)
        self.ids: list[str] = []  # every id ever answered, current or not, deleted or not
        self.live: list[str] = []  # ids that were current and not deleted when last seen
        self.unknown = [secrets.token_hex(12) for _ in range(3)]  # ids no object has: cached 404s
        self.queries = [self._pool_query(self.space.document()) for _ in range(QUERY_POOL)]

    def _pool_query(self, doc: dict[str, Any]) -> str:
        """Mostly a filter about ``doc`` that selective invalidation covers, else any filter."""
        if self.rng.random() < 0.8:
            for _ in range(10):
                query = dumps(self.space.filter_about([doc]))
                if _selective(query):
                    return query
        return dumps(self.space.filter())

    def _document(self) -> dict[str, Any]:
        doc = self.space.document()
        roll = self.rng.random()
        if roll < 0.08:
            doc["@type"] = "WitnessFragment"
        elif roll < 0.2 and self.ids:
            doc["type"] = "Annotation"
            doc["body"] = {"partOf": self.rng.choice(MANUSCRIPTS)}
            doc["target"] = ID_PREFIX + self.rng.choice(self.ids)
        elif roll < 0.25 and self.ids:
            doc["target"] = ID_PREFIX + self.rng.choice(self.ids)
            doc["body"] = {"references": {"value": ["urn:gloss:" + self.rng.choice("12")]}}
        return doc

    def _with_id(self, key: str, doc: dict[str, Any]) -> str:
        text = dumps(doc)
        head = '{"@id": ' + json.dumps(ID_PREFIX + key)
        return head + ("}" if text == "{}" else ", " + text[1:])

    def write(self) -> tuple[str, str, str, dict[str, Any]]:
        """(kind, method, path, request kwargs) of the next write."""
        kinds = ["create"] * 3 + ["bulkCreate"]
        if self.live:
            kinds += ["update", "overwrite", "overwrite", "patch", "set", "unset", "delete", "release"]
            kinds += ["bulkUpdate"]
        kind = self.rng.choice(kinds)
        target = self.rng.choice(self.live) if self.live else ""
        doc = self._document()
        if self.rng.random() < 0.5:  # the pool follows the documents, slowly enough for entries to be hit
            self.queries[self.rng.randrange(QUERY_POOL)] = self._pool_query(doc)
        if kind == "create":
            return kind, "POST", "/v1/api/create", {"content": dumps(doc)}
        if kind == "bulkCreate":
            items = [dumps(self._document()) for _ in range(self.rng.randint(1, 4))]
            return kind, "POST", "/v1/api/bulkCreate", {"content": "[" + ", ".join(items) + "]"}
        if kind == "bulkUpdate":
            targets = self.rng.sample(self.live, min(len(self.live), self.rng.randint(1, 3)))
            items = [self._with_id(key, self._document()) for key in targets]
            return kind, "PUT", "/v1/api/bulkUpdate", {"content": "[" + ", ".join(items) + "]"}
        if kind == "delete":
            return kind, "DELETE", f"/v1/api/delete/{target}", {}
        if kind == "release":
            return kind, "PATCH", f"/v1/api/release/{target}", {}
        method = {"update": "PUT", "overwrite": "PUT"}.get(kind, "PATCH")
        return kind, method, f"/v1/api/{kind}", {"content": self._with_id(target, doc)}

    def learn(self, kind: str, path: str, status: int, answer: Any) -> None:
        """Track which ids exist and which are current, from a write's response."""
        if status >= 300:
            return
        if kind == "delete":
            self.live.remove(path.rsplit("/", 1)[1])
            return
        for doc in answer if isinstance(answer, list) else [answer]:
            key = doc["@id"].rsplit("/", 1)[1]
            if key not in self.ids:
                self.ids.append(key)
            if key not in self.live:
                self.live.append(key)
        if kind in ("update", "patch", "set", "unset") and isinstance(answer, dict):
            previous = ((answer.get("__rerum") or {}).get("history") or {}).get("previous", "")
            old = previous.rsplit("/", 1)[-1]
            if old in self.live:
                self.live.remove(old)

    def reads(self) -> list[Read]:
        """The reads after one write: mostly queries from the pool, then every other read kind, on a
        working set of recent objects (so that their entries are read again, and can be hits)."""
        rng = self.rng
        reads = [
            Read("POST", "/v1/api/query" + rng.choice(["", "", "", "?limit=3", "?limit=2&skip=1"]), query)
            for query in rng.sample(self.queries, 29)
        ]
        reads.append(Read("HEAD", "/v1/api/query", rng.choice(self.queries)))
        recent = self.ids[-60:] or self.unknown
        reads += [Read("GET", f"/v1/id/{rng.choice(recent)}") for _ in range(5)]
        reads.append(Read("GET", f"/v1/id/{rng.choice(self.unknown)}"))
        reads += [
            Read("GET", f"/v1/history/{rng.choice(recent)}"),
            Read("GET", f"/v1/since/{rng.choice(recent)}"),
        ]
        words = " ".join(rng.sample(WORDS, rng.randint(1, 2)))
        reads.append(
            Read(
                "POST",
                rng.choice(["/v1/api/search", "/v1/api/search/phrase"]),
                json.dumps({"searchText": words}),
            )
        )
        witness = json.dumps({"ManuscriptWitness": rng.choice(MANUSCRIPTS)})
        gog = rng.choice(["/gog/fragmentsInManuscript", "/gog/glossesInManuscript", "/gog/id"])
        reads.append(
            Read("GET", f"{gog}/{rng.choice(recent)}")
            if gog == "/gog/id"
            else Read("POST", gog, witness, True)
        )
        assert len(reads) == READS_PER_WRITE
        return reads


def _answer(response: httpx.Response) -> Any:
    if response.request.method == "HEAD" or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def _kind(read: Read) -> str:
    """The read's endpoint, without its id or query string; queries say whether they have a cover."""
    path = read.path.split("?")[0]
    if path.startswith(("/v1/id/", "/v1/history/", "/v1/since/", "/gog/id/")):
        path = path.rsplit("/", 1)[0]
    if path == "/v1/api/query" and read.body is not None:
        path += " (selective)" if _selective(read.body) else " (unselective)"
    return f"{read.method} {path}"


@functools.cache
def _selective(query: str) -> bool:
    try:
        return cover(parse_filter(orjson.loads(query))) is not None
    except BadRequest:
        return False


async def _compare(servers: Servers, clients: list[httpx.AsyncClient], read: Read, tally: Tally) -> None:
    cached, uncached = await asyncio.gather(
        *(
            client.request(
                read.method,
                read.path,
                content=read.body,
                headers={**JSON, **(servers.auth[str(client.base_url).rstrip("/")] if read.gog else {})},
            )
            for client in clients
        )
    )
    hit = cached.headers.get("X-Cache") == "HIT"
    tally.comparisons += 1
    tally.hits += hit
    counts = tally.by_kind.setdefault(_kind(read), [0, 0])
    counts[0] += 1
    counts[1] += hit
    if (cached.status_code, _answer(cached)) != (uncached.status_code, _answer(uncached)):
        tally.mismatches.append(
            f"{read.method} {read.path} {read.body or ''}: cached {cached.status_code} "
            f"({cached.headers.get('X-Cache')}) {cached.text[:300]!r} / database {uncached.status_code} "
            f"{uncached.text[:300]!r}"
        )


async def run_sequence(servers: Servers, seed: int, writes: int, *, stop_at_first: bool = False) -> Tally:
    """Run ``writes`` generated writes against the cached server, comparing every read kind after each."""
    sequence = Sequence(seed)
    tally = Tally()
    limits = httpx.Limits(max_connections=16)
    async with (
        httpx.AsyncClient(base_url=servers.cached.url, timeout=60, limits=limits) as cached,
        httpx.AsyncClient(base_url=servers.uncached.url, timeout=60, limits=limits) as uncached,
    ):
        auth = servers.auth[servers.cached.url]
        for _ in range(writes):
            kind, method, path, request = sequence.write()
            response = await cached.request(method, path, headers={**JSON, **auth}, **request)
            assert response.status_code < 500, (kind, request, response.status_code, response.text)
            tally.writes += 1
            tally.refused_writes += response.status_code >= 400
            sequence.learn(kind, path, response.status_code, _answer(response))
            reads = sequence.reads()
            await asyncio.gather(*(_compare(servers, [cached, uncached], read, tally) for read in reads))
            if stop_at_first and tally.mismatches:
                break
    return tally


@pytest.fixture(scope="module")
def servers(test_database: DatabaseServer) -> Iterator[Servers]:
    running = Servers(test_database, "differential")
    yield running
    running.stop()


def test_a_cached_server_answers_every_read_as_the_database_does_after_every_write(servers: Servers) -> None:
    tally = asyncio.run(run_sequence(servers, SEED, WRITES))
    hit_rate = tally.hits / tally.comparisons
    publish(
        "cache differential test",
        f"seed {SEED}: {tally.writes} writes ({tally.refused_writes} refused with 4xx), {tally.comparisons} "
        f"comparisons, {tally.hits} ({hit_rate:.0%}) answered from the cache, {len(tally.mismatches)} "
        f"mismatches\n"
        + "\n".join(
            f"  {kind}: {n} compared, {hits} hits" for kind, (n, hits) in sorted(tally.by_kind.items())
        ),
    )
    assert tally.mismatches == [], f"seed {SEED}: " + "\n".join(tally.mismatches[:10])
    assert tally.writes >= WRITES and tally.comparisons >= WRITES * READS_PER_WRITE
    assert hit_rate >= 0.6, f"only {hit_rate:.0%} of the answers came from the cache"


def test_negative_control_a_write_that_forgets_its_number_stamps_is_caught(
    test_database: DatabaseServer,
) -> None:
    broken = Servers(test_database, "differential-broken", app="tests.support.broken_stamps:create_app")
    try:
        tally = asyncio.run(run_sequence(broken, SEED, WRITES, stop_at_first=True))
    finally:
        broken.stop()
    publish(
        "cache differential test, negative control",
        f"seed {SEED}: writes forgetting their number stamps: first mismatch after {tally.writes} writes "
        f"and {tally.comparisons} comparisons",
    )
    assert tally.mismatches, "the differential test did not notice writes that forget stamps"

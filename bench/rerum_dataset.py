"""Realistic RERUM documents, generated and loaded straight into PostgreSQL for bench/query_search.py.

Creating a million objects through the HTTP API would take hours, so the documents are built here the
way the server stores them (``@context``, ``@id``, the client's keys, ``__rerum``, ``_id``, in that
order; history prime/previous/next linked as updates link them) and written with ``COPY`` into
``rerum_objects (id, body, doc)``; the generated columns (``slug``, ``prime``, ``search``) fill
themselves. The schema and its indexes are the server's own (``rerum_server.store.migrate``).

What is generated (deterministic for a given size, so a rebuilt dataset is the same dataset):

- 80% W3C Web Annotations: ``@context`` anno.jsonld, ``type: Annotation``, ``target`` one of ~N/10
  canvas URIs, ``body`` a ``TextualBody`` whose ``value`` has 8-40 words;
- 20% IIIF Presentation 2 annotation lists whose ``resources[].resource.chars`` hold 3-15 lines of
  4-12 words (the other text path of RERUM's search);
- words drawn from a ~5,000-word vocabulary with a Zipf-like distribution, ~8% of them accented;
- version trees: 90% of objects are never updated, the others have 1-3 later versions (each a new
  object whose ``history.prime`` names the root, ``previous`` its parent), as ``/update`` makes them;
- ``__rerum.generatedBy`` one of 50 agents (also Zipf-like: a few agents write most objects).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from rerum_server.store.migrate import migrate

#: Bumped whenever the generator changes what it writes: a stored dataset built by another version
#: is rebuilt rather than silently measured.
GENERATOR_VERSION = "1"

#: ``@id`` = ID_PREFIX + ``_id``; the benchmark's server runs with the same RERUM_ID_PREFIX, so the
#: history links stored here are the URIs it would have written itself.
ID_PREFIX = "http://rerum.bench/v1/id/"
CONTEXT_URL = "http://rerum.bench/v1/context.json"

VOCABULARY_SIZE = 5_000
AGENTS = 50
ANNOTATION_SHARE = 0.8
CHUNK = 25_000  # documents per COPY (and per unit of work of a loader process)
SEED = 20_261_126

ANNO_CONTEXT = "http://www.w3.org/ns/anno.jsonld"
IIIF2_CONTEXT = "http://iiif.io/api/presentation/2/context.json"
_EPOCH = datetime(2021, 3, 1, tzinfo=UTC)

# Accented forms the vocabulary borrows (all removed by PostgreSQL's unaccent, as search requires).
_ACCENTS = {"a": "àáâä", "e": "éèêë", "i": "íîï", "o": "óôö", "u": "úüû", "n": "ñ", "c": "ç"}
_ONSETS = ["b", "c", "d", "f", "g", "l", "m", "n", "p", "r", "s", "t", "v", "qu", "tr", "st", "pr", "gl", ""]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "io", "au"]
_CODAS = ["", "", "", "n", "s", "r", "m", "t", "l", "x"]


# --------------------------------------------------------------------------- vocabulary


def fold(word: str) -> str:
    """The form search compares: lower case without accents (what unaccent + 'simple' index)."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def make_vocabulary(size: int = VOCABULARY_SIZE, seed: int = SEED) -> list[str]:
    """``size`` pseudo-Latin words, most frequent first, distinct even after accents are removed.

    Real words are not needed (the 'simple' configuration does no stemming), but distinct folded
    forms are: two words differing only by an accent would be one search term.
    """
    rng = random.Random(seed)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        # Frequent words are short, as in natural text; the rank is the position in the list.
        syllables = 1 if len(words) < 60 else rng.choice((2, 2, 3, 3, 4))
        word = "".join(
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)
        )
        if len(word) < 2 or word in seen:
            continue
        seen.add(word)
        if rng.random() < 0.08:
            positions = [i for i, ch in enumerate(word) if ch in _ACCENTS]
            if positions:
                i = rng.choice(positions)
                word = word[:i] + rng.choice(_ACCENTS[word[i]]) + word[i + 1 :]
        words.append(word)
    return words


def zipf_cum_weights(size: int, exponent: float = 1.05, shift: float = 2.7) -> list[float]:
    """Cumulative Zipf-Mandelbrot weights ``1 / (rank + shift) ** exponent`` for ``random.choices``."""
    return list(itertools.accumulate(1.0 / (rank + shift) ** exponent for rank in range(1, size + 1)))


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class Spec:
    """What to build: ``documents`` objects over ``documents // 10`` canvases."""

    documents: int

    @property
    def canvases(self) -> int:
        return max(1, self.documents // 10)

    def chunks(self) -> list[tuple[int, int]]:
        """[start, end) document index ranges, one per COPY."""
        return [(s, min(s + CHUNK, self.documents)) for s in range(0, self.documents, CHUNK)]


def canvas_uri(index: int) -> str:
    """Canvas ``index``: 200 pages per manuscript, as a IIIF repository would mint them."""
    return f"https://iiif.example.org/manuscript/ms{index // 200:05d}/canvas/p{index % 200 + 1}"


def agent_uri(index: int) -> str:
    return f"{ID_PREFIX}{0xA6E470000000000000000000 + index:024x}"


def object_id(index: int) -> str:
    """A 24-hex id shaped like a MongoDB ObjectId (seconds, per-process noise, counter)."""
    seconds = int(_EPOCH.timestamp()) + index * 7
    noise = (index * 0x9E3779B1) & 0xFFFFFFFFFF
    return f"{seconds:08x}{noise:010x}{index & 0xFFFFFF:06x}"


def timestamp(index: int) -> str:
    """RERUM's ``createdAt`` (UTC, milliseconds, no zone), increasing with insertion order."""
    moment = _EPOCH + timedelta(seconds=index * 7, milliseconds=index % 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


@dataclass
class ChunkStats:
    """What one loader wrote: counts, and in how many documents each vocabulary rank occurs."""

    documents: int = 0
    annotations: int = 0
    lists: int = 0
    versions: int = 0  # documents that are not a tree root
    document_frequency: Counter[int] = field(default_factory=Counter)

    def count(self, content: Annotation | AnnotationList, *, is_version: bool) -> None:
        self.documents += 1
        self.annotations += isinstance(content, Annotation)
        self.lists += isinstance(content, AnnotationList)
        self.versions += is_version
        self.document_frequency.update(content.words())

    def add(self, other: ChunkStats) -> None:
        self.documents += other.documents
        self.annotations += other.annotations
        self.lists += other.lists
        self.versions += other.versions
        self.document_frequency.update(other.document_frequency)


class Generator:
    """Builds the documents of one chunk; every random choice comes from a chunk-seeded RNG."""

    def __init__(self, spec: Spec, chunk_start: int) -> None:
        self.spec = spec
        self.rng = random.Random(SEED * 1_000_003 + chunk_start)
        self.words = make_vocabulary()
        self.ranks = range(len(self.words))
        self.word_weights = zipf_cum_weights(len(self.words))
        self.agent_weights = zipf_cum_weights(AGENTS, exponent=1.2, shift=0.5)
        self.stats = ChunkStats()

    # ------------------------------------------------------------------ text

    def draw(self, low: int, high: int) -> list[int]:
        """The vocabulary ranks of a text of ``low``-``high`` words."""
        return self.rng.choices(self.ranks, cum_weights=self.word_weights, k=self.rng.randint(low, high))

    def sentence(self, ranks: list[int]) -> str:
        """The text of ``ranks``: capitalised, an occasional comma, a final full stop."""
        words = [self.words[r] for r in ranks]
        words[0] = words[0].capitalize()
        # Equality queries on body.value must send this exact text back, punctuation included.
        for i in range(3, len(words) - 1, 7):
            words[i] += ","
        return " ".join(words) + "."

    def revise(self, ranks: list[int]) -> list[int]:
        """An edited text: about one word in five replaced, as in a corrected transcription."""
        return [
            self.rng.choices(self.ranks, cum_weights=self.word_weights)[0] if self.rng.random() < 0.2 else r
            for r in ranks
        ]

    # ------------------------------------------------------------------ documents

    def records(self, start: int, end: int) -> Iterator[tuple[str, str, str]]:
        """``(id, body, doc)`` COPY records for document indexes ``start`` .. ``end - 1``.

        ``body`` and ``doc`` are the same JSON text: PostgreSQL parses the second into jsonb.
        """
        index = start
        while index < end:
            # The last tree of a chunk may be cut short; trees never span chunks, so chunks are
            # independent and can be generated in parallel.
            size = min(1 if self.rng.random() < 0.9 else self.rng.randint(2, 4), end - index)
            for object_id_, text in self.tree(index, size):
                yield object_id_, text, text
            index += size

    def tree(self, first: int, size: int) -> list[tuple[str, str]]:
        """A root and ``size - 1`` successive versions of it, as ``(id, json text)``."""
        ids = [object_id(first + k) for k in range(size)]
        uris = [ID_PREFIX + i for i in ids]
        agent = agent_uri(self.rng.choices(range(AGENTS), cum_weights=self.agent_weights)[0])
        canvas = canvas_uri(self.rng.randrange(self.spec.canvases))
        if self.rng.random() < ANNOTATION_SHARE:
            content: Annotation | AnnotationList = Annotation.draw(self, canvas)
        else:
            content = AnnotationList.draw(self, canvas)
        out = []
        for k in range(size):
            if k > 0:
                content = content.revised(self)
            history = {
                "prime": "root" if k == 0 else uris[0],
                "previous": "" if k == 0 else uris[k - 1],
                "next": [uris[k + 1]] if k + 1 < size else [],
            }
            doc = {
                "@context": content.context,
                "@id": uris[k],
                **content.body(self),
                "__rerum": self.rerum(first + k, agent, history),
                "_id": ids[k],
            }
            out.append((ids[k], orjson.dumps(doc).decode()))
            self.stats.count(content, is_version=k > 0)
        return out

    @staticmethod
    def rerum(index: int, agent: str, history: dict[str, Any]) -> dict[str, Any]:
        """``__rerum`` with the keys, in the order, that the server's create and update write."""
        return {
            "@context": CONTEXT_URL,
            "alpha": True,
            "APIversion": "1.1.0",
            "createdAt": timestamp(index),
            "isOverwritten": "",
            "isReleased": "",
            "history": history,
            "releases": {"previous": "", "next": [], "replaces": ""},
            "generatedBy": agent,
        }


@dataclass(frozen=True)
class Annotation:
    """A W3C Web Annotation with a TextualBody on one canvas."""

    context = ANNO_CONTEXT
    canvas: str
    ranks: list[int]
    motivation: str
    language: str | None

    @classmethod
    def draw(cls, gen: Generator, canvas: str) -> Annotation:
        motivation = gen.rng.choices(("transcribing", "commenting", "describing", "tagging"), (5, 3, 2, 1))[0]
        language = gen.rng.choice(("la", "fr", "de", "it", "en")) if gen.rng.random() < 0.3 else None
        return cls(canvas, gen.draw(8, 40), motivation, language)

    def revised(self, gen: Generator) -> Annotation:
        return Annotation(self.canvas, gen.revise(self.ranks), self.motivation, self.language)

    def words(self) -> set[int]:
        return set(self.ranks)

    def body(self, gen: Generator) -> dict[str, Any]:
        text: dict[str, Any] = {
            "type": "TextualBody",
            "value": gen.sentence(self.ranks),
            "format": "text/plain",
        }
        if self.language is not None:
            text["language"] = self.language
        return {"type": "Annotation", "motivation": self.motivation, "body": text, "target": self.canvas}


@dataclass(frozen=True)
class AnnotationList:
    """A IIIF Presentation 2 annotation list: one text line per resource, each on a canvas region."""

    context = IIIF2_CONTEXT
    canvas: str
    lines: list[list[int]]
    regions: list[str]

    @classmethod
    def draw(cls, gen: Generator, canvas: str) -> AnnotationList:
        lines, regions = [], []
        y = gen.rng.randrange(100, 400)
        for _ in range(gen.rng.randint(3, 15)):
            lines.append(gen.draw(4, 12))
            height = gen.rng.randrange(40, 90)
            regions.append(f"{gen.rng.randrange(80, 200)},{y},{gen.rng.randrange(900, 1400)},{height}")
            y += height + gen.rng.randrange(5, 30)
        return cls(canvas, lines, regions)

    def revised(self, gen: Generator) -> AnnotationList:
        return AnnotationList(self.canvas, [gen.revise(line) for line in self.lines], self.regions)

    def words(self) -> set[int]:
        return {rank for line in self.lines for rank in line}

    def body(self, gen: Generator) -> dict[str, Any]:
        resources = [
            {
                "@type": "oa:Annotation",
                "motivation": "sc:painting",
                "resource": {
                    "@type": "cnt:ContentAsText",
                    "format": "text/plain",
                    "chars": gen.sentence(line),
                },
                "on": f"{self.canvas}#xywh={region}",
            }
            for line, region in zip(self.lines, self.regions, strict=True)
        ]
        return {"@type": "sc:AnnotationList", "label": f"Lines of {self.canvas}", "resources": resources}


# --------------------------------------------------------------------------- loading

#: Written last by ``build``: a data dir whose table lacks a matching row was not fully built.
META_TABLE = "bench_dataset"


def _load_chunk(dsn: str, documents: int, start: int, end: int) -> ChunkStats:
    """Generate documents ``start`` .. ``end - 1`` and COPY them (runs in a loader process)."""
    generator = Generator(Spec(documents), start)

    async def copy() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            # The records are generated while asyncpg streams them, so Python builds the next rows
            # while PostgreSQL computes the generated columns of the previous ones.
            await connection.copy_records_to_table(
                "rerum_objects", records=generator.records(start, end), columns=["id", "body", "doc"]
            )
        finally:
            await connection.close()

    asyncio.run(copy())
    return generator.stats


async def _prepare_empty_table(dsn: str) -> None:
    """Drop any previous dataset, create the server's schema, and drop its secondary indexes.

    Building each index once over the loaded table is several times faster than maintaining it
    row by row during COPY (and gives compact GIN indexes); ``finish`` recreates exactly the
    indexes of the server's schema by running its migration again.
    """
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f"DROP TABLE IF EXISTS rerum_objects, {META_TABLE}")
        await migrate(connection, force=True)
        names = await connection.fetch(
            "SELECT i.indexrelid::regclass::text AS name FROM pg_index i"
            " WHERE i.indrelid = 'rerum_objects'::regclass AND NOT i.indisprimary"
        )
        for row in names:
            await connection.execute(f'DROP INDEX "{row["name"]}"')
    finally:
        await connection.close()


async def _finish(dsn: str, spec: Spec, stats: ChunkStats, seconds: dict[str, float], began: float) -> None:
    """Recreate the indexes, vacuum/analyze/checkpoint, and record what was built."""
    connection = await asyncpg.connect(dsn)
    try:
        started = time.monotonic()
        # Session settings for the index builds only; the server's own sessions keep the defaults.
        await connection.execute("SET maintenance_work_mem = '1GB'")
        await migrate(connection, force=True)
        seconds["indexes"] = time.monotonic() - started
        started = time.monotonic()
        # ANALYZE so the planner knows the data; VACUUM so the visibility map is set (index-only
        # scans) and hint bits are written now rather than by the first measured reads; CHECKPOINT
        # so the load's dirty pages are not flushed during a measurement.
        await connection.execute("VACUUM (ANALYZE) rerum_objects")
        await connection.execute("CHECKPOINT")
        seconds["vacuum_analyze"] = time.monotonic() - started
        seconds["total"] = time.monotonic() - began
        words = make_vocabulary()
        vocabulary = [[words[r], stats.document_frequency[r]] for r in range(len(words))]
        info = {
            "documents": stats.documents,
            "annotations": stats.annotations,
            "lists": stats.lists,
            "versions": stats.versions,
            "canvases": spec.canvases,
            "seconds": seconds,
            "vocabulary": vocabulary,  # [word, documents containing it], most frequent rank first
        }
        await connection.execute(
            f"CREATE TABLE {META_TABLE} (documents bigint, generator text, built_at timestamptz, info jsonb)"
        )
        await connection.execute(
            f"INSERT INTO {META_TABLE} VALUES ($1, $2, now(), $3::jsonb)",
            spec.documents,
            GENERATOR_VERSION,
            orjson.dumps(info).decode(),
        )
    finally:
        await connection.close()


async def stored_info(dsn: str, documents: int) -> dict[str, Any] | None:
    """What ``build`` recorded, if this database holds a complete dataset of ``documents`` objects."""
    connection = await asyncpg.connect(dsn)
    try:
        if await connection.fetchval("SELECT to_regclass($1)", META_TABLE) is None:
            return None
        row = await connection.fetchrow(f"SELECT documents, generator, info FROM {META_TABLE}")
        if row is None or row["documents"] != documents or row["generator"] != GENERATOR_VERSION:
            return None
        return orjson.loads(row["info"])
    finally:
        await connection.close()


def build(dsn: str, documents: int, processes: int) -> dict[str, Any]:
    """Replace any dataset in the database at ``dsn`` with ``documents`` generated objects.

    Returns the recorded info (counts, vocabulary with document frequencies, phase timings).
    """
    spec = Spec(documents)
    seconds: dict[str, float] = {}
    started = time.monotonic()
    asyncio.run(_prepare_empty_table(dsn))
    stats = ChunkStats()
    # One loader process per core: generation (Python) and the generated columns (PostgreSQL's
    # jsonpath + unaccent + to_tsvector per row) are both CPU-bound, and overlap across loaders.
    with ProcessPoolExecutor(max_workers=processes) as pool:
        futures = [pool.submit(_load_chunk, dsn, documents, s, e) for s, e in spec.chunks()]
        for future in futures:
            stats.add(future.result())
            print(f"    loaded {stats.documents:,} / {documents:,} documents", end="\r", flush=True)
    print()
    seconds["copy"] = time.monotonic() - started
    asyncio.run(_finish(dsn, spec, stats, seconds, started))
    info = asyncio.run(stored_info(dsn, documents))
    assert info is not None
    return info

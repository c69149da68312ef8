"""Generated bad input against the live server: no answer of 500 or more but the documented ones.

Hypothesis draws batches of requests over every route (and paths that are none), every method, content
types, headers, query strings and bodies: deep, wide, long and numerically extreme, well-formed or not.
Each batch is sent concurrently. An answer fails the test when its status is 500 or more, except 501
where the API documents it (edits of objects RERUM does not hold, the ``/client/*`` helpers without an
issuer) and 503 (the cache or the database unavailable); or when it does not come back, whole, within
``ANSWER_TIMEOUT_S``.

Hypothesis draws descriptions of bodies, which are built afterwards, so that a body of megabytes or a
thousand levels costs a few choices, not a few million.

Costly queries are drawn too (thousands of equality keys, ``$in`` values, ``$or`` branches, ``$all``
items, array elements, regexes: each refused with 400 naming the cost limit, or answered), and bulk
bodies up to past their item limit. All the while another client makes small writes on the same
server: none of them may be refused (no 503 because of what the generated requests did).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support.api import create, key
from tests.support.reports import publish
from tests.support.server import RunningServer

BATCHES = 200
BATCH = 25  # BATCHES × BATCH = the requests of one run
CONCURRENCY = 12
BULK_ITEMS = 40
# A request held past the server's own bound (the statement timeout) ran unbounded somewhere; the
# margin is for a loaded CI machine queueing requests, not for work the server should not be doing.
STATEMENT_TIMEOUT_S = 10
ANSWER_TIMEOUT_S = 3 * STATEMENT_TIMEOUT_S
GOG = "https://store.rerum.io/v1/id/61043ad4ffce846a83e700dd"
DOCUMENTED_501 = ("/v1/api/patch", "/v1/api/set", "/v1/api/unset", "/client/", "/v1/api/accessToken",
                  "/v1/api/refreshToken")  # fmt: skip

# --- paths -----------------------------------------------------------------------------------------------

ROUTES = [
    "/", "/v1/", "/v1", "/context.json", "/v1/context.json", "/v1/api", "/v1/id/{id}", "/v1/since/{id}",
    "/v1/history/{id}", "/v1/api/query", "/v1/api/search", "/v1/api/search/phrase", "/v1/api/cache/stats",
    "/v1/api/cache/health", "/v1/api/cache/clear", "/v1/api/create", "/v1/api/bulkCreate", "/v1/api/update",
    "/v1/api/bulkUpdate", "/v1/api/patch", "/v1/api/set", "/v1/api/unset", "/v1/api/overwrite",
    "/v1/api/delete/{id}", "/v1/api/release/{id}", "/v1/api/accessToken", "/v1/api/refreshToken",
    "/client/register", "/client/request-new-access-token", "/client/request-new-refresh-token",
    "/client/verify", "/gog/fragmentsInManuscript", "/gog/glossesInManuscript", "/gog/id/{id}",
    "/v1/api/create.action", "/v1/api/getByProperties", "/v1/api/batch_create", "/v1/api/query.action",
    "/v1/api/search.action", "/v1/api/nothing", "/v2/id/x", "/v1/id", "/v1/api/delete",
]  # fmt: skip
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "TRACE"]
# Most requests use their route's own method (else nearly all would stop at 405).
OWN_METHODS = {"query": ["POST", "HEAD"], "search": ["POST"], "create": ["POST"], "bulkCreate": ["POST"],
               "batch_create": ["POST"], "update": ["PUT"], "bulkUpdate": ["PUT"], "overwrite": ["PUT"],
               "patch": ["PATCH", "POST"], "set": ["PATCH", "POST"], "unset": ["PATCH", "POST"],
               "delete": ["DELETE"], "release": ["PATCH"], "getByProperties": ["POST"], "Manuscript": ["POST"],
               "clear": ["POST"], "Token": ["POST"], "token": ["POST"]}  # fmt: skip


def own_methods(template: str) -> list[str]:
    """The methods a route template answers (GET for those not listed)."""
    return next((methods for part, methods in OWN_METHODS.items() if part in template), ["GET"])


HOSTILE_IDS = ["x' OR '1'='1", "%ZZ", "%00", "%2F", "..", "-1", "é", "😀", "0" * 24, "f" * 25, "a" * 3000,
               "%C3%28", "%ED%A0%80", "$where", "{}", "[]"]  # fmt: skip


@dataclass
class Pool:
    """Objects made before the run, that generated requests name: ids, slugs and URIs."""

    ids: list[str]
    slugs: list[str]
    uris: list[str]
    prefix: str


# --- query strings and headers ---------------------------------------------------------------------------

HUGE_DIGITS = "9" * 4400
NUMBERS = ["0", "-0", "1", "-1", "1.9", "2e3", "1e400", "-1e400", "18446744073709551616", "-9223372036854775809",
           HUGE_DIGITS, "-" + HUGE_DIGITS, "0" * 5000 + "5", " 7", "+8", "NaN", "Infinity", "0x10", "١٢",
           "", "abc", "5abc"]  # fmt: skip


CONTENT_TYPES = [
    None, "application/json", "application/ld+json", "text/plain", "application/json; charset=utf-8",
    "application/json; charset=latin1", "text/plain; charset=utf-16", "application/xml", "",
    "application/json, text/plain", "application/json;", 'application/json; a="b,c"', "multipart/form-data",
    "APPLICATION/JSON", "application/json; charset=" + "x" * 2000, "application/x-www-form-urlencoded",
    "text/plain; charset=\"utf-8\"", "application/json\tx", "*/*",
]  # fmt: skip


# --- bodies ----------------------------------------------------------------------------------------------

RAW_NUMBERS = ["1e308", "-1e308", "1.7976931348623157e308", "5e-324", "-0", "-0.0", "18446744073709551615",
               "18446744073709551616", "9223372036854775808", "-9223372036854775809", "1e400", "1" * 400,
               "0." + "0" * 400 + "1", "1E+2", "1e-400", "123456789012345678901234567890"]  # fmt: skip
KEYS = ["@id", "id", "_id", "@context", "type", "@type", "__rerum", "__deleted", "searchText", "options",
        "slop", "ManuscriptWitness", "body", "target", "a", "a.b", "$or", "$and", "$where", "$regex", "",
        "x" * 300, "é", "\u0000", "history"]  # fmt: skip
CONTEXTS = ["http://www.w3.org/ns/anno.jsonld", "http://iiif.io/api/presentation/3/context.json"]


OVER_5_MB = b'{"a":"' + b"x" * (5 * 1024 * 1024) + b'"}'


# The large values are few and made once: building them per request cost more than sending them.
@functools.cache
def _deep(levels: int, opening: bytes, closing: bytes) -> bytes:
    return opening * levels + b"1" + closing * levels


@functools.cache
def _wide(count: int, *, as_array: bool) -> bytes:
    if as_array:
        return b"[" + b",".join(b"%d" % n for n in range(count)) + b"]"
    return b"{" + b",".join(b'"k%d":%d' % (n, n) for n in range(count)) + b"}"


@functools.cache
def _costly_filter(shape: str, count: int) -> bytes:
    """A filter of ``count`` parts in one of the shapes that once took the database down (issue 10.3)."""
    if shape == "keys":
        return b"{" + b",".join(b'"k%d":%d' % (n, n) for n in range(count)) + b"}"
    if shape == "or":
        return b'{"$or":[' + b",".join(b'{"k%d":"v%d"}' % (n, n) for n in range(count)) + b"]}"
    if shape == "in":
        return b'{"k":{"$in":[' + b",".join(b'"v%d"' % n for n in range(count)) + b"]}}"
    if shape == "all":
        return b'{"k":{"$all":[' + b",".join(b'"v%d"' % n for n in range(count)) + b"]}}"
    if shape == "array":
        return b'{"k":[' + b",".join(b"%d" % n for n in range(count)) + b"]}"
    if shape == "regex":
        return b'{"$or":[' + b",".join(b'{"k%d":{"$regex":"^a.*b%d"}}' % (n, n) for n in range(count)) + b"]}"
    return b'{"$and":[' + b",".join(b'{"k%d":{"$gt":%d}}' % (n, n) for n in range(count)) + b"]}"


@functools.cache
def _bulk(count: int) -> bytes:
    return b"[" + b",".join(b'{"generated":%d}' % n for n in range(count)) + b"]"


@functools.cache
def _long(size: int, unit: str) -> bytes:
    return b'"' + (unit * (size // len(unit))).encode() + b'"'


class Call:
    """One request. Not a dataclass, so that a failure report shows this ``repr``: bodies can be megabytes."""

    def __init__(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        # a client cannot send a header value with leading or trailing white space
        self.headers = [(name, value.strip(b" \t")) for name, value in headers]
        self.method, self.path, self.query, self.body = method, path, query, body

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 300 else self.body[:150] + b"..." + self.body[-150:]
        return f"Call({self.method} {self.path} {self.query!r:.300} {self.headers!r:.600} body={body!r})"


def calls(pool: Pool, tokens: dict[str, str]) -> st.SearchStrategy[Call]:
    """Requests naming ``pool``'s objects, with ``tokens`` among the credentials. Every strategy is made
    once, here: building them per draw cost more than the requests did."""
    # --- paths
    templates = st.sampled_from(ROUTES)
    idents = st.one_of(
        st.sampled_from(pool.ids),
        st.sampled_from(pool.slugs),
        st.sampled_from(HOSTILE_IDS),
        st.text(min_size=1, max_size=40).map(lambda text: quote(text, safe="")),
    )
    suffixes = st.sampled_from(["", "", "", "/", "//", "/extra", ".action", "?", "#frag"])
    shout = st.integers(0, 9)

    any_method = st.sampled_from(METHODS)

    @st.composite
    def targets(draw: st.DrawFn) -> tuple[str, str]:
        template = draw(templates)
        method = draw(st.sampled_from(own_methods(template))) if draw(shout) < 7 else draw(any_method)
        path = template.replace("{id}", draw(idents)) + draw(suffixes)
        return method, path.upper() if draw(shout) == 0 else path

    # --- query strings and headers
    query_keys = st.sampled_from(
        ["limit", "skip", "slop", "limit", "skip", "x", "LIMIT", "a" * 300, "limit[]"]
    )
    query_values = st.one_of(st.sampled_from(NUMBERS), st.text(max_size=30), st.just("z" * 3000))
    queries = st.lists(st.tuples(query_keys, query_values), max_size=4)
    content_types = st.sampled_from(["application/json"] * len(CONTENT_TYPES) + CONTENT_TYPES)
    authorizations = st.sampled_from(
        [*tokens.values(), *[tokens["owner"]] * 3, None, "Bearer", "Bearer garbage", "Basic eHg6eXk=",
         "Bearer a.b.c", "Bearer " + "e" * 3000, "bearer " + tokens["owner"][7:]]
    )  # fmt: skip
    # printable latin-1 (a client refuses to send control characters in a header)
    latin1 = st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
    )
    optional = {
        b"slug": st.one_of(latin1, st.sampled_from(["a/b", "x" * 300, "ok-slug"])),
        b"if-overwritten-version": st.one_of(latin1, st.just("2020-01-01T00:00:00.000")),
        b"if-none-match": st.one_of(latin1, st.sampled_from(["*", '"x"', 'W/"x"', '"' + "a" * 2000 + '"'])),
        b"x-http-method-override": st.sampled_from(["PATCH", "patch", "PUT", "DELETE", "x" * 500]),
        b"accept": st.sampled_from(["*/*", "text/html", "application/ld+json", "x" * 1000]),
        b"origin": latin1,
    }
    sometimes = st.integers(0, 3)

    @st.composite
    def headers(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        content_type = draw(content_types)
        if content_type is not None:
            out.append((b"content-type", content_type.encode()))
        authorization = draw(authorizations)
        if authorization is not None:
            out.append((b"authorization", authorization.encode()))
        for name, values in optional.items():
            if draw(sometimes) == 0:
                out.append((name, draw(values).encode("latin-1")))
        return out

    # --- bodies
    fragment_kinds = st.sampled_from(["scalar", "scalar", "number", "uri", "deep", "wide", "long", "nested"])
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                        st.text(max_size=40), st.sampled_from(CONTEXTS))  # fmt: skip
    raw_numbers = st.sampled_from(RAW_NUMBERS)
    uris = st.sampled_from([*pool.uris, pool.prefix + "0" * 24, "http://x", "urn:x"])
    levels = st.one_of(
        st.sampled_from([98, 99, 100, 101, 252, 253, 254, 255, 1023, 1024, 1025]), st.integers(0, 1100)
    )
    brackets = st.sampled_from([(b"[", b"]"), (b'{"k":', b"}"), (b'[{"k":', b"}]")])
    widths = st.sampled_from([0, 1, 100, 2000, 20000])
    lengths = st.sampled_from([1_000, 100_000, 1_000_000])
    units = st.sampled_from(["x", "é", "😀", "\\u0000", "\\ud800", '\\"', "<", "\\u00e9", " "])
    keys = st.sampled_from(KEYS)
    flags = st.booleans()

    @st.composite
    def fragments(draw: st.DrawFn, nested: st.SearchStrategy[bytes] | None) -> bytes:
        """One JSON value (raw bytes; sometimes not valid JSON, on purpose)."""
        kind = draw(fragment_kinds)
        if kind == "scalar":
            value = draw(scalars)
            # orjson encodes 64-bit integers only
            return str(value).encode() if type(value) is int else orjson.dumps(value)
        if kind == "number":
            return draw(raw_numbers).encode()
        if kind == "uri":
            return orjson.dumps(draw(uris))
        if kind == "deep":
            return _deep(draw(levels), *draw(brackets))
        if kind == "wide":
            return _wide(draw(widths), as_array=draw(flags))
        if kind == "long":
            return _long(draw(lengths), draw(units))
        if nested is None:
            return b"null"
        items = draw(st.lists(st.tuples(keys, nested), max_size=4))
        if draw(flags):
            return b"[" + b",".join(value for _, value in items) + b"]"
        return b"{" + b",".join(orjson.dumps(name) + b":" + value for name, value in items) + b"}"

    values = fragments(fragments(fragments(None)))
    members = st.lists(st.tuples(keys, values), max_size=5)
    own_uris = st.sampled_from(pool.uris)

    @st.composite
    def documents(draw: st.DrawFn) -> bytes:
        pairs = draw(members)
        if draw(flags):  # name an object the server holds, so that edits reach their rules
            pairs.insert(0, ("@id", orjson.dumps(draw(own_uris))))
        return b"{" + b",".join(orjson.dumps(name) + b":" + value for name, value in pairs) + b"}"

    body_kinds = st.sampled_from(
        ["document", "document", "document", "bulk", "fragment", "bytes", "empty", "text", "costly",
         "large bulk"]
    )  # fmt: skip
    costly_shapes = st.sampled_from(["keys", "or", "in", "all", "array", "regex", "gt"])
    costly_counts = st.sampled_from([40, 100, 257, 1_000, 2_000, 12_500, 16_384, 20_001])
    bulk_counts = st.sampled_from([999, 1_000, 1_001, 5_000])
    one_in_fifty = st.integers(0, 49)  # bodies over the 5 MB limit: each costs more than the rest of a batch
    bulk_items = st.lists(st.one_of(documents(), values), max_size=BULK_ITEMS)
    raw_bytes = st.binary(max_size=200)
    texts = st.text(max_size=300)

    @st.composite
    def bodies(draw: st.DrawFn) -> bytes:
        if draw(one_in_fifty) == 0:
            return OVER_5_MB
        kind = draw(body_kinds)
        if kind == "document":
            return draw(documents())
        if kind == "bulk":
            return b"[" + b",".join(draw(bulk_items)) + b"]"
        if kind == "costly":
            return _costly_filter(draw(costly_shapes), draw(costly_counts))
        if kind == "large bulk":
            return _bulk(draw(bulk_counts))
        if kind == "fragment":
            return draw(values)
        if kind == "bytes":
            return draw(raw_bytes)
        if kind == "text":
            return draw(texts).encode()
        return b""

    @st.composite
    def call(draw: st.DrawFn) -> Call:  # not st.builds, whose failure report would print whole bodies
        method, path = draw(targets())
        return Call(method, path, draw(queries), draw(headers()), draw(bodies()))

    return call()


# --- running ---------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the run sent and got back, for the session's summary."""

    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


def _bad(call: Call, status: int) -> bool:
    if status == 501:
        return not call.path.lower().startswith(tuple(path.lower() for path in DOCUMENTED_501))
    return status >= 500 and status != 503


async def _send(http: httpx.AsyncClient, call: Call, limit: asyncio.Semaphore) -> tuple[Call, int | str]:
    async with limit:
        try:
            response = await http.request(
                call.method, call.path, params=call.query, headers=call.headers, content=call.body
            )
        except httpx.TimeoutException:
            return call, f"no answer within {ANSWER_TIMEOUT_S} s"
        except httpx.TransportError as exc:
            return call, f"{type(exc).__name__}: {exc}"
        return call, response.status_code


async def _run(base_url: str, batch: list[Call]) -> list[tuple[Call, int | str]]:
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=ANSWER_TIMEOUT_S) as http:
        return await asyncio.gather(*(_send(http, call, limit) for call in batch))


@pytest.fixture(scope="module")
def pool(http: httpx.Client, owner: dict[str, str], server: RunningServer) -> Pool:
    made = [
        create(http, owner, {"type": "Annotation", "n": n}, Slug=f"gen-{n}-{uuid.uuid4().hex[:8]}")
        for n in range(20)
    ]
    return Pool(
        ids=[key(obj) for obj in made],
        slugs=[obj["__rerum"]["slug"] for obj in made],
        uris=[obj["@id"] for obj in made],
        prefix=server.env["RERUM_ID_PREFIX"],
    )


@pytest.fixture(scope="module")
def tokens(
    owner: dict[str, str], stranger: dict[str, str], token_for: Callable[[str], str]
) -> dict[str, str]:
    return {"owner": owner["Authorization"], "stranger": stranger["Authorization"],
            "gog": "Bearer " + token_for(GOG)}  # fmt: skip


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    counted = Tally()
    yield counted
    shown = ", ".join(f"{status}: {n}" for status, n in sorted(counted.statuses.items()))
    publish(
        "generated bad input", f"{counted.requests} requests in {counted.seconds:.1f} s; statuses {shown}"
    )


class Probe:
    """Another client's small writes, one after another on fresh connections, while the run lasts."""

    def __init__(self, url: str, authorization: str) -> None:
        self.url, self.authorization = url, authorization
        self.statuses: list[int] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._write)

    def _write(self) -> None:
        while not self.done.is_set():
            with httpx.Client(base_url=self.url, timeout=ANSWER_TIMEOUT_S) as http:
                answer = http.post("/v1/api/create", json={"probe": len(self.statuses)},
                                   headers={"Authorization": self.authorization})  # fmt: skip
            self.statuses.append(answer.status_code)

    def __enter__(self) -> Probe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def test_generated_requests_never_answer_a_server_error(
    server: RunningServer, pool: Pool, tokens: dict[str, str], tally: Tally
) -> None:
    # No shrinking: the failure lists the offending requests themselves, and shrinking batches of
    # large bodies would take minutes.
    @settings(max_examples=BATCHES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])  # fmt: skip
    @given(batch=st.lists(calls(pool, tokens), min_size=BATCH, max_size=BATCH))
    def run(batch: list[Call]) -> None:
        started = time.monotonic()
        answers = asyncio.run(_run(server.url, batch))
        tally.seconds += time.monotonic() - started
        tally.requests += len(answers)
        for _, status in answers:
            if isinstance(status, int):
                tally.statuses[status] = tally.statuses.get(status, 0) + 1
        bad = [
            f"{status}: {call!r}"
            for call, status in answers
            if not isinstance(status, int) or _bad(call, status)
        ]
        if bad:
            raise AssertionError(f"{len(bad)} of {len(answers)} requests failed:\n" + "\n".join(bad[:10]))

    with Probe(server.url, tokens["owner"]) as probe:
        run()
    assert tally.requests >= BATCHES * BATCH
    assert probe.statuses and set(probe.statuses) == {201}, probe.statuses

"""Each read kind's entries live for their own TTL (``CACHE_TTL_ID``, ``_QUERY``, ``_SEARCH``,
``_HISTORY``); generations outlive the longest entry, and the statistics' bookkeeping is never cut
shorter than an entry it tracks. Checked with ``PTTL`` on a real Redis after each fill."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from rerum_server.cache.client import CacheClient
from rerum_server.cache.query_stamps import query_stamps
from rerum_server.query.compile import compile_filter
from rerum_server.query.parse import parse_filter
from rerum_server.query.search import phrase_search, word_search
from rerum_server.settings import READ_KIND_TTLS, Settings
from tests.support.harness import AGENT, Harness

GOG_AGENT = "https://store.rerum.io/v1/id/61043ad4ffce846a83e700dd"
# Far apart, so that the TTL an entry got names its read kind even after the test's own run time.
TTLS = {"CACHE_TTL_HISTORY": 4_000_000, "CACHE_TTL_QUERY": 3_000_000, "CACHE_TTL_ID": 2_000_000,
        "CACHE_TTL_SEARCH": 1_000_000}  # fmt: skip
SLACK_MS = 300_000  # far more than the test runs for; far less than the spacing of TTLS


def test_settings_give_each_read_kind_its_variable_and_fall_back_to_cache_ttl() -> None:
    settings = Settings.from_env({"CACHE_TTL": "5000", "CACHE_TTL_ID": "7000", "CACHE_TTL_SEARCH": ""})
    assert settings.cache_entry_ttls_ms == {
        "id": 7000, "query": 5000, "gog": 5000, "search": 5000, "phrase": 5000, "history": 5000, "since": 5000
    }  # fmt: skip
    configured = Settings.from_env({name: str(ttl) for name, ttl in TTLS.items()})
    assert configured.cache_ttl_ms == 300_000
    assert configured.cache_entry_ttls_ms == {kind: TTLS[name] for kind, name in READ_KIND_TTLS.items()}


def test_each_read_kind_fills_its_entry_with_its_own_ttl(in_harness: Any) -> None:
    settings = Settings.from_env({"CACHE_TTL": "60000", **{name: str(ttl) for name, ttl in TTLS.items()}})
    factory = functools.partial(CacheClient.from_url, entry_ttls_ms=settings.cache_entry_ttls_ms)

    async def scenario(h: Harness) -> dict[str, Any]:
        root = await h.writes.create({"type": "Annotation", "body": {"value": "ttlword here"}}, AGENT, None)
        witness = "https://example.org/witness/ttl"
        gog_doc = await h.writes.create(
            {"type": "Annotation", "body": {"partOf": witness}, "target": "urn:ttl"}, GOG_AGENT, None
        )
        query = {"body.value": "ttlword here"}
        parsed = parse_filter(query)
        stamps = query_stamps(parsed, selective=True)
        reads: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("history", lambda: h.reads.history(root["_id"])),
            ("since", lambda: h.reads.since(root["_id"])),
            ("query", lambda: h.reads.query(compile_filter(parsed), 10, 0, identity=query, stamps=stamps)),
            ("gog", lambda: h.reads.gog_fragments(witness, GOG_AGENT, 10, 0)),
            ("gog", lambda: h.reads.gog_glosses(witness, GOG_AGENT, 10, 0)),
            ("gog", lambda: h.reads.gog_object(gog_doc["_id"])),
            ("id", lambda: h.reads.object(root["_id"])),
            ("search", lambda: h.reads.search(word_search("ttlword"), 10, 0)),
            ("phrase", lambda: h.reads.search(phrase_search("ttlword here", 2), 10, 0)),
        ]
        namespace = await h.cache.namespace()
        redis = h.cache.redis

        async def entry_keys() -> set[bytes]:
            return {key async for key in redis.scan_iter(match=namespace.prefix + "e:*", count=1000)}

        filled: list[tuple[str, int]] = []
        for kind, read in reads:
            before = await entry_keys()
            _answer, status = await read()
            assert status == "MISS", kind
            (new,) = await entry_keys() - before  # exactly one entry per read
            filled.append((kind, await redis.pttl(new)))
        generations = [await redis.pttl(key) async for key in
                       redis.scan_iter(match=namespace.prefix + "g:*", count=1000)]  # fmt: skip
        return {
            "filled": filled,
            "generations": generations,
            "index": await redis.pttl(namespace.index),
            "sizes": await redis.pttl(namespace.sizes),
        }

    seen = in_harness(scenario, cache_factory=factory)
    for kind, pttl in seen["filled"]:
        expected = settings.cache_entry_ttls_ms[kind]
        assert expected - SLACK_MS < pttl <= expected, (kind, pttl, expected)
    longest = max(TTLS.values())
    assert seen["generations"] and all(longest < pttl <= 2 * longest for pttl in seen["generations"])
    # The first fill was the longest-lived (history); the later, shorter ones did not cut the
    # index and sizes below it.
    assert longest - SLACK_MS < seen["index"] <= longest
    assert longest - SLACK_MS < seen["sizes"] <= longest

"""Redis key names, pure. Every key of one namespace shares one hash tag, so a script's keys always
live in one hash slot (Redis Cluster) and the namespace is scoped by the server's ``run_id``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson


@dataclass(frozen=True)
class Namespace:
    """The keys of one Redis server's cache (``run_id``): a restart or failover makes a new namespace."""

    run_id: str
    name: str = "rerum"  # CACHE_NAMESPACE: deployments (or test runs) sharing one Redis stay apart

    @cached_property
    def prefix(self) -> str:
        # Built once per namespace: a write names dozens of keys (measured in bench/cache.py).
        return self.name + ":{" + self.run_id + "}:"

    @property
    def born(self) -> str:
        return self.prefix + "born"

    @property
    def stats(self) -> str:
        return self.prefix + "stats"

    @property
    def index(self) -> str:
        return self.prefix + "entries"

    @property
    def sizes(self) -> str:
        return self.prefix + "sizes"

    def entry(self, digest: str) -> str:
        return self.prefix + "e:" + digest

    def lease(self, digest: str) -> str:
        return self.prefix + "l:" + digest

    def generation(self, stamp: str) -> str:
        return self.prefix + "g:" + stamp

    def fence(self, stamp: str) -> str:
        return self.prefix + "f:" + stamp

    def stamp_keys(self, stamps: list[str]) -> list[str]:
        """(generation, fence) key pairs, flattened, in the order of ``stamps``."""
        return [key for stamp in stamps for key in (self.generation(stamp), self.fence(stamp))]


def young_for_ms(born: bytes | str | None, now_ms: int, fence_ms: int) -> int:
    """The rest of a namespace's first fence lifetime, in which ``read.lua`` refuses fills: a write
    fenced on the server before a restart may still be committing. ``born`` is its birth key's value."""
    if born is None:
        return fence_ms
    return max(0, int(born) + fence_ms - now_ms)


def read_digest(endpoint: str, *parts: Any) -> str:
    """A canonical key for a read: the endpoint and its normalised parameters (objects with sorted keys)."""
    canonical = orjson.dumps([endpoint, *parts], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()

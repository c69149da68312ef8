"""A worker's own copies of large cached answers, so a hit on one need not carry its bytes, pure.

A copy is the value of an entry together with the generations it was valid under. The read script
is told those generations; when they are still the current ones (and no write is in flight), the
value is exactly as fresh as the entry itself would be, and the script answers "your copy is valid"
instead of sending the value. Generations are random tokens that change on every write and never
come back, so a copy can only ever be confirmed for the state it was read in.

Bounded by bytes (least recently used copies go first) and by the entry lifetime.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Copy:
    generations: str
    value: bytes
    expires_at: float  # time.monotonic()


class LocalCopies:
    """Copies of values of at least ``min_bytes``, at most ``max_bytes`` in all, each for ``ttl_s``."""

    def __init__(self, *, max_bytes: int, min_bytes: int, ttl_s: float) -> None:
        self.max_bytes = max_bytes
        self.min_bytes = min_bytes
        self.ttl_s = ttl_s
        self.bytes = 0
        self._copies: OrderedDict[str, Copy] = OrderedDict()

    def __len__(self) -> int:
        return len(self._copies)

    def get(self, digest: str) -> Copy | None:
        """The live copy for ``digest`` (marked as recently used), or None."""
        copy = self._copies.get(digest)
        if copy is None:
            return None
        if copy.expires_at <= time.monotonic():
            self._drop(digest)
            return None
        self._copies.move_to_end(digest)
        return copy

    def offer(self, digest: str, generations: str, value: bytes) -> None:
        """Keep ``value`` as valid under ``generations`` if it is large enough and fits at all."""
        if len(value) < self.min_bytes or len(value) > self.max_bytes:
            return
        self._drop(digest)
        self._copies[digest] = Copy(generations, value, time.monotonic() + self.ttl_s)
        self.bytes += len(value)
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._copies)))

    def clear(self) -> None:
        """Forget every copy (the cache moved to another Redis server)."""
        self._copies.clear()
        self.bytes = 0

    def _drop(self, digest: str) -> None:
        copy = self._copies.pop(digest, None)
        if copy is not None:
            self.bytes -= len(copy.value)

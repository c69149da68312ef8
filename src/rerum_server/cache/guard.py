"""Fence before COMMIT, release after COMMIT: how a write keeps every cached read fresh.

1. fence (one script): every stamp the write touches gets a new generation and this write's fence,
   which expires after F ms. Redis unavailable → ROLLBACK and 503: nothing was written.
2. COMMIT, which must be acknowledged within F minus a margin of the moment the fence was sent.
3. release (one script, whatever COMMIT's outcome): new generations again, fence removed.

Steps 2 and 3 are shielded from cancellation: a client that disconnects cannot stop a COMMIT
half-way or skip its release. If COMMIT was acknowledged in time, a failed release is only
counted (the fence keeps the stamps uncacheable until it expires, and every fill after that reads
the committed state). If COMMIT was late, the fence may already have expired, so the write is not
answered until a release has succeeded.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable

from asyncpg.transaction import Transaction

from rerum_server import errors
from rerum_server.cache.client import CacheClient, CacheUnavailable

log = logging.getLogger("rerum_server.cache")

CACHE_UNAVAILABLE = (
    "The cache that keeps reads fresh cannot be reached, so nothing was written.  Try again later."
)
Probe = Callable[[str], Awaitable[None]]


async def _no_probe(point: str) -> None:
    return None


class CommitGuard:
    """Commits write transactions under the fence protocol (or plainly when there is no cache)."""

    def __init__(
        self, cache: CacheClient | None, *, fence_ms: int, margin_ms: int, probe: Probe = _no_probe
    ) -> None:
        self.cache = cache
        self.fence_ms = fence_ms
        self.margin_ms = margin_ms
        self._probe = probe

    async def commit(self, transaction: Transaction, stamps: list[str]) -> None:
        """COMMIT ``transaction``, invalidating ``stamps`` around it; raises 503 if it cannot fence."""
        if self.cache is None or not stamps:
            await transaction.commit()
            return
        token = uuid.uuid4().hex
        sent = time.monotonic()
        try:
            await self.cache.fence(stamps, token)
        except CacheUnavailable as exc:
            await transaction.rollback()
            self.cache.count_later("writesRefused")
            log.warning("write refused: no fence (%s)", exc)
            raise errors.ServiceUnavailable(CACHE_UNAVAILABLE) from exc
        deadline = sent + (self.fence_ms - self.margin_ms) / 1000
        await self._probe("write:after-fence")
        if time.monotonic() > deadline:
            await transaction.rollback()
            await self._release(stamps, token, required=False)
            raise errors.ServiceUnavailable(CACHE_UNAVAILABLE)
        await asyncio.shield(self._commit_and_release(transaction, stamps, token, deadline))

    async def _commit_and_release(
        self, transaction: Transaction, stamps: list[str], token: str, deadline: float
    ) -> None:
        try:
            await transaction.commit()
        finally:
            late = time.monotonic() > deadline
            await self._probe("write:after-commit")
            await self._release(stamps, token, required=late)

    async def _release(self, stamps: list[str], token: str, *, required: bool) -> None:
        assert self.cache is not None
        delay = 0.01
        while True:
            try:
                await self.cache.release(stamps, token)
                return
            except CacheUnavailable as exc:
                self.cache.count_later("releaseFailures")
                if not required:
                    log.warning("release failed after a timely COMMIT; the fence expires by itself (%s)", exc)
                    return
                log.warning("release failed after a late COMMIT; retrying before answering (%s)", exc)
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, 1.0)

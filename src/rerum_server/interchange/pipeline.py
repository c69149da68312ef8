"""An import's flow: read and decode the next batch in a thread while PostgreSQL stores the last one."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rerum_server.interchange.framing import Item
from rerum_server.interchange.prefixes import IdRewrite
from rerum_server.interchange.records import Rejected, read_document
from rerum_server.store.importing import Earlier, Loader, Rejection, Staged

BATCH = 10_000
_IDENTITY_BYTES = 1 << 20


@dataclass
class Summary:
    """What one run did, and what earlier runs of the same import had done."""

    earlier: Earlier
    read: int = 0  # documents read by this run (after the ones an earlier run committed)
    inserted: int = 0
    present: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def identify(items: Iterator[Item]) -> tuple[str, Iterator[Item]]:
    """A digest of the input's first MiB of documents, naming it across runs; and the items, unread.

    A rerun of an interrupted import is recognised by it (and so is a later export of the same
    collection, whose beginning is the same: its new documents are then added after the old ones).
    """
    head: list[Item] = []
    digest = hashlib.sha256()
    size = 0
    for item in items:
        head.append(item)
        digest.update(item.raw.rstrip(b"\r\n") + b"\n")
        size += len(item.raw)
        if size >= _IDENTITY_BYTES:
            break
    return digest.hexdigest(), itertools.chain(head, items)


def _read_batch(
    items: Iterator[Item], rewrite: IdRewrite | None
) -> tuple[list[Staged], list[Rejection], int]:
    """The next batch: documents to store, documents refused, and the number of the last item read."""
    staged: list[Staged] = []
    rejected: list[Rejection] = []
    last = 0
    for item in itertools.islice(items, BATCH):
        last = item.number
        try:
            staged.append(Staged(item.number, item.where, read_document(item.raw, rewrite)))
        except Rejected as exc:
            rejected.append(Rejection(item.number, item.where, str(exc)))
    return staged, rejected, last


async def run_import(
    loader: Loader,
    items: Iterator[Item],
    *,
    rewrite: IdRewrite | None,
    progress: Callable[[int], None],
) -> Summary:
    """Store every item after the ones an earlier run committed; returns what happened."""
    summary = Summary(await loader.start())
    pending = (item for item in items if item.number > summary.earlier.items)
    loop = asyncio.get_running_loop()
    # Decoding is Python's work and storing is PostgreSQL's: on two cores they overlap this way.
    upcoming = loop.run_in_executor(None, _read_batch, pending, rewrite)
    while True:
        staged, rejected, last = await upcoming
        if last == 0:
            break
        upcoming = loop.run_in_executor(None, _read_batch, pending, rewrite)
        result = await loader.store(staged, rejected, last)
        summary.read += len(staged) + len(rejected)
        summary.inserted += result.inserted
        summary.present += result.present
        summary.rejected.extend(result.rejected)
        progress(summary.read)
    await loader.finish()
    return summary

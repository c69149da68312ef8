"""THE place a write commits.

Every write endpoint calls one method here. Each method runs one PostgreSQL transaction: lock the
version trees it touches, load the documents, let the pure versioning rules record a ``Change``,
apply it and commit. Nothing else in the package commits. A transaction that finds a tree re-rooted
under it, or loses a deadlock, is retried from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from rerum_server import errors
from rerum_server.cache.guard import CommitGuard
from rerum_server.cache.stamps import write_stamps
from rerum_server.identifiers import is_object_id, new_object_id
from rerum_server.store.pool import DATABASE_UNREACHABLE
from rerum_server.store.transaction import WriteTransaction
from rerum_server.versioning import edits, history
from rerum_server.versioning.change import Change, ChangeSet
from rerum_server.versioning.metadata import (
    Document,
    Naming,
    assemble,
    declared_id,
    format_timestamp,
    is_deleted,
    is_http_url,
    is_known_id_context,
    last_path_segment,
    root_metadata,
)

T = TypeVar("T")
_ATTEMPTS = 8
NO_ID_UPDATE = "Object in request body must have an 'id' or '@id' property. "
NO_ID_EDIT = "Object in request body must have the property '@id' or 'id'. "
UPDATE_DELETED = "The object you are trying to update is deleted. "


class _TreeMoved(Exception):
    """A tree was re-rooted between reading a document and locking its tree: start again."""


async def _roll_back(transaction: asyncpg.transaction.Transaction) -> None:
    """ROLLBACK, unless the session is already gone (the server discarded the transaction with it):
    the error that ended the transaction is the one to report, not this one."""
    with contextlib.suppress(DATABASE_UNREACHABLE):
        await transaction.rollback()


@dataclass(frozen=True)
class Edit:
    """One of the three key-level edits and what RERUM says when its target is unknown."""

    name: str
    transform: Callable[[Document, Document], Document | None]


PATCH = Edit("patch", edits.patched)
SET = Edit("set", edits.with_keys_set)
UNSET = Edit("unset", edits.with_keys_unset)


class Writes:
    """All write operations; ``now`` and ``new_id`` are injectable so tests control time and ids."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        naming: Naming,
        *,
        guard: CommitGuard | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = new_object_id,
    ) -> None:
        self.pool = pool
        self.naming = naming
        self.guard = guard or CommitGuard(None, fence_ms=0, margin_ms=0)
        self._now = now
        self._new_id = new_id

    async def _commit(self, work: Callable[[WriteTransaction, ChangeSet], Awaitable[T]]) -> T:
        """Run ``work`` in a transaction, apply the ``Change`` it recorded, and commit it under the
        cache's fence (``CommitGuard``): the stamps come from the old and new state of every document
        the transaction touched."""
        for attempt in range(_ATTEMPTS):
            async with self.pool.acquire() as connection:
                transaction = connection.transaction()
                await transaction.start()
                try:
                    changes = ChangeSet()
                    result = await work(WriteTransaction(connection), changes)
                    change: Change = changes.change()
                    if not change.is_empty:
                        await WriteTransaction(connection).apply(change)
                    stamps = [] if change.is_empty else write_stamps(change)
                except BaseException as exc:
                    await _roll_back(transaction)
                    if (
                        isinstance(exc, _TreeMoved | asyncpg.DeadlockDetectedError)
                        and attempt + 1 < _ATTEMPTS
                    ):
                        await asyncio.sleep(0)
                        continue
                    raise
                await self.guard.commit(transaction, stamps)
                return result
        raise AssertionError("unreachable: the last attempt re-raises")

    async def _locked(self, tx: WriteTransaction, keys: list[str]) -> dict[str, Document | None]:
        """Find documents by id or slug with their trees locked; the result is stable until COMMIT."""
        first = {key: await tx.find(key) for key in keys}
        roots = {key: history.tree_root_id(doc) for key, doc in first.items() if doc is not None}
        await tx.lock_trees([root for root in roots.values() if root is not None])
        found = {key: await tx.find(key) for key in keys}
        for key, doc in found.items():
            root = None if doc is None else history.tree_root_id(doc)
            if root is not None and root != roots.get(key):
                raise _TreeMoved(key)
        return found

    async def _whole_tree(self, tx: WriteTransaction, node: Document, changes: ChangeSet) -> None:
        root_id = history.tree_root_id(node)
        root = node if root_id == node["_id"] or root_id is None else await tx.find(root_id)
        changes.add_loaded([node] if root is None else await tx.tree(root))

    def _timestamp(self) -> str:
        return format_timestamp(self._now())

    def _overwrite_stamp(self, original: Document) -> str:
        """The new ``isOverwritten``: read under the tree lock and always later than the current one.

        It is the version token clients echo in ``If-Overwritten-Version``, so two overwrites must never
        share one: with millisecond timestamps, overwrites committed in the same millisecond (or stamped
        before waiting for the lock) did, and a client could then confirm a state it never saw.
        """
        stamp = self._timestamp()
        current = original["__rerum"].get("isOverwritten") or ""
        if isinstance(current, str) and current and stamp <= current:
            try:
                previous = datetime.strptime(current, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
            except ValueError:
                return stamp
            stamp = format_timestamp(previous + timedelta(milliseconds=1))
        return stamp

    async def create(self, body: Document, agent: str, slug: str | None) -> Document:
        """``POST /create``: a new tree root; honours a client ``_id`` that is a valid ObjectId."""
        client_id = body.get("_id") if is_object_id(body.get("_id")) else None
        object_id = client_id or self._new_id()
        doc = assemble(
            self.naming, object_id, body, root_metadata(self.naming, agent, self._timestamp(), slug=slug)
        )

        async def work(tx: WriteTransaction, changes: ChangeSet) -> Document:
            for name in sorted({n for n in (slug, client_id) if n is not None}):
                await tx.claim_name(name)
            changes.insert(doc)
            return doc

        return await self._commit(work)

    async def bulk_create(self, items: list[Document], agent: str) -> list[Document]:
        """``POST /bulkCreate``: every non-empty item becomes a new root, all in one transaction."""
        now = self._timestamp()
        client_ids = [item["_id"] for item in items if is_object_id(item.get("_id"))]
        if len(client_ids) != len(set(client_ids)):
            # The ChangeSet keys insertions by _id, so a repeated id would silently store one document
            # while the response listed both; it is the same duplicate key the reference answers 409 for.
            raise errors.Conflict(errors.DUPLICATE_ID)
        docs = [
            assemble(
                self.naming,
                item["_id"] if is_object_id(item.get("_id")) else self._new_id(),
                item,
                root_metadata(self.naming, agent, now),
            )
            for item in items
        ]

        async def work(tx: WriteTransaction, changes: ChangeSet) -> list[Document]:
            for name in sorted(set(client_ids)):
                await tx.claim_name(name)
            for doc in docs:
                changes.insert(doc)
            return docs

        return await self._commit(work)

    async def update(self, body: Document, agent: str) -> Document:
        """``PUT /update``: a new version of a RERUM object, or the import of a foreign one."""
        uri = declared_id(body)
        if uri is None:
            raise errors.BadRequest(NO_ID_UPDATE)
        if not isinstance(uri, str):
            raise errors.BadRequest("The '@id' or 'id' of the object must be a string. ")
        now = self._timestamp()
        new_id = self._new_id()
        if self.naming.id_prefix not in uri:
            doc = assemble(self.naming, new_id, body, root_metadata(self.naming, agent, now, previous=uri))

            async def import_work(tx: WriteTransaction, changes: ChangeSet) -> Document:
                changes.insert(doc)
                return doc

            return await self._commit(import_work)

        key = last_path_segment(uri)

        async def work(tx: WriteTransaction, changes: ChangeSet) -> Document:
            original = (await self._locked(tx, [key]))[key]
            if original is None:
                raise errors.NotFound(
                    "Object not in RERUM even though it has a RERUM URI.  "
                    "Check if it is an authentic RERUM object. "
                )
            if is_deleted(original):
                raise errors.Forbidden(UPDATE_DELETED)
            changes.add_loaded([original])
            return history.add_version(self.naming, changes, original, body, agent, now, new_id)

        return await self._commit(work)

    async def bulk_update(self, items: list[Document], agent: str) -> list[Document]:
        """``PUT /bulkUpdate``: new versions in request order; unknown, foreign or deleted ids are skipped.

        The same original may appear twice: each new version is linked (the reference lost one).
        """
        now = self._timestamp()
        keyed = [
            (item, last_path_segment(uri))
            for item in items
            if isinstance(uri := declared_id(item), str) and self.naming.id_prefix in uri
        ]
        new_ids = [self._new_id() for _ in keyed]

        async def work(tx: WriteTransaction, changes: ChangeSet) -> list[Document]:
            found = await self._locked(tx, sorted({key for _, key in keyed}))
            changes.add_loaded(doc for doc in found.values() if doc is not None)
            versions = []
            for (item, key), new_id in zip(keyed, new_ids, strict=True):
                original = found[key]
                if original is None or is_deleted(original):
                    continue
                current = changes.get(original["_id"]) or original
                versions.append(history.add_version(self.naming, changes, current, item, agent, now, new_id))
            return versions

        return await self._commit(work)

    async def edit(self, kind: Edit, body: Document, agent: str) -> Document:
        """``PATCH /patch|set|unset``: a new version with keys changed, or the original when nothing applies."""
        key = _edited_key(body)
        now = self._timestamp()
        new_id = self._new_id()

        async def work(tx: WriteTransaction, changes: ChangeSet) -> Document:
            original = (await self._locked(tx, [key]))[key]
            if original is None:
                raise errors.NotImplementedByRerum(
                    "This object is not from RERUM and will need imported. This is not automated yet. "
                    "You can make a new object with create. "
                )
            if is_deleted(original):
                raise errors.Forbidden(UPDATE_DELETED)
            content = kind.transform(original, body)
            if content is None:
                return original
            changes.add_loaded([original])
            return history.add_version(self.naming, changes, original, content, agent, now, new_id)

        return await self._commit(work)

    async def overwrite(self, body: Document, agent: str, expected_header: str | None) -> Document:
        """``PUT /overwrite``: replace content in place, checking the expected version atomically."""
        key = _edited_key(body)
        expected: Any = expected_header
        if expected is None and isinstance(body.get("__rerum"), dict):
            expected = body["__rerum"].get("isOverwritten")

        async def work(tx: WriteTransaction, changes: ChangeSet) -> Document:
            original = (await self._locked(tx, [key]))[key]
            if original is None:
                raise errors.NotFound("No object with this id could be found in RERUM. Cannot overwrite. ")
            edits.check_overwritable(original, agent, expected)
            changes.add_loaded([original])
            doc = edits.overwritten(original, body, self._overwrite_stamp(original))
            changes.put(doc)
            return doc

        return await self._commit(work)

    async def delete(self, key: str, agent: str) -> None:
        """``DELETE /delete/{id}``: soft delete and tree healing in one transaction."""
        now = self._timestamp()

        async def work(tx: WriteTransaction, changes: ChangeSet) -> None:
            node = (await self._locked(tx, [key]))[key]
            if node is None:
                raise errors.NotFound("No object with this id could be found in RERUM.  Cannot delete.")
            if not is_deleted(node):
                await self._whole_tree(tx, node, changes)
            history.delete(changes, node, agent, now)

        await self._commit(work)

    async def release(self, key: str, agent: str, slug: str | None) -> Document:
        """``PATCH /release/{id}``: mark released, set the slug, maintain the releases tree."""
        now = self._timestamp()

        async def work(tx: WriteTransaction, changes: ChangeSet) -> Document:
            if slug is not None:
                await tx.claim_name(slug)
            node = (await self._locked(tx, [key]))[key]
            if node is None:
                raise errors.NotFound("No object with this id could be found in RERUM. Cannot release. ")
            if not is_deleted(node):
                await self._whole_tree(tx, node, changes)
            return history.release(changes, node, agent, now, slug)

        return await self._commit(work)


def _edited_key(body: Document) -> str:
    """The ``_id`` or slug named by the URL in a patch/set/unset/overwrite body."""
    uri = declared_id(body)
    if uri is None:
        raise errors.BadRequest(NO_ID_EDIT)
    if not is_http_url(uri):
        raise errors.BadRequest("The '@id' or 'id' must be the http(s) URL of a RERUM object. ")
    return last_path_segment(uri)


def declares_identifier(item: Document) -> bool:
    """Whether a bulk item names an object: ``@id``, or ``id`` under a known id-context."""
    return "@id" in item or (is_known_id_context(item.get("@context")) and "id" in item)

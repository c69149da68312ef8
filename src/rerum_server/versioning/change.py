"""What one write does to the store: documents inserted and documents replaced (old → new).

A ``ChangeSet`` is filled by the versioning rules against the documents a transaction loaded; the
store applies the resulting ``Change`` and (later) the cache derives its stamps from the same value.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

from rerum_server.versioning.metadata import Document


@dataclass(frozen=True)
class Change:
    """The effect of one write: new rows and replaced rows, each replacement with its old state."""

    inserted: tuple[Document, ...] = ()
    replaced: tuple[tuple[Document, Document], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.inserted and not self.replaced


class ChangeSet:
    """The documents of one transaction as they are now, and what changed since they were loaded."""

    def __init__(self, loaded: Iterable[Document] = ()) -> None:
        # Loaded states are copied: the rules modify the documents they are given, and a change is
        # only seen if the state it is compared with was left alone.
        self._before: dict[str, Document] = {doc["_id"]: copy.deepcopy(doc) for doc in loaded}
        self._current: dict[str, Document] = {}
        self._inserted: dict[str, Document] = {}

    def add_loaded(self, docs: Iterable[Document]) -> None:
        """Make more loaded documents known (documents already known keep their current state)."""
        for doc in docs:
            if doc["_id"] not in self._before:
                self._before[doc["_id"]] = copy.deepcopy(doc)

    def get(self, object_id: str) -> Document | None:
        """The current state of a document in this transaction (a copy that is safe to modify)."""
        for source in (self._inserted, self._current, self._before):
            if object_id in source:
                return copy.deepcopy(source[object_id])
        return None

    def by_uri(self, uri: str) -> Document | None:
        """The current state of the document whose ``@id`` is ``uri``."""
        for source in (self._inserted, self._current, self._before):
            for doc in source.values():
                if doc.get("@id") == uri:
                    return self.get(doc["_id"])
        return None

    def all_current(self) -> list[Document]:
        """Every known document in its current state, loaded ones first, in load order."""
        ids = list(self._before) + [i for i in self._inserted if i not in self._before]
        return [doc for doc in (self.get(i) for i in ids) if doc is not None]

    def insert(self, doc: Document) -> None:
        self._inserted[doc["_id"]] = doc

    def put(self, doc: Document) -> None:
        """Record the new state of a loaded or inserted document."""
        object_id = doc["_id"]
        if object_id in self._inserted:
            self._inserted[object_id] = doc
        else:
            self._current[object_id] = doc

    def change(self) -> Change:
        replaced = tuple((self._before[i], doc) for i, doc in self._current.items() if doc != self._before[i])
        return Change(inserted=tuple(self._inserted.values()), replaced=replaced)

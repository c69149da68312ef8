"""Version-tree invariants under random sequences of writes, on the pure rules (no servers).

After any sequence of create / update / delete / release, every surviving document is linked both
ways (``history.next`` ↔ ``history.previous``), ``prime`` names the root its ``previous`` chain
reaches, and the releases tree points at the nearest released ancestor and descendants.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from rerum_server import errors
from rerum_server.versioning import history
from rerum_server.versioning.change import ChangeSet
from rerum_server.versioning.metadata import (
    Document,
    Naming,
    assemble,
    is_deleted,
    is_released,
    root_metadata,
)

NAMING = Naming(id_prefix="https://store.example/v1/id/", context_url="https://store.example/v1/context.json")
AGENT = "https://agent.example/a"
STRANGER = "https://agent.example/b"


class Store:
    """An in-memory stand-in for the table, used only to drive the pure rules."""

    def __init__(self) -> None:
        self.docs: dict[str, Document] = {}
        self._ids = (f"{n:024x}" for n in itertools.count(1))
        self._clock = (f"2026-01-01T00:00:{n % 60:02d}.{n % 1000:03d}" for n in itertools.count(1))

    def live(self) -> list[Document]:
        return [doc for doc in self.docs.values() if not is_deleted(doc)]

    def tree_of(self, node: Document) -> list[Document]:
        root = history.tree_root_id(node)
        return [doc for doc in self.live() if history.tree_root_id(doc) == root]

    def apply(self, changes: ChangeSet) -> None:
        change = changes.change()
        for doc in change.inserted:
            self.docs[doc["_id"]] = doc
        for _, new in change.replaced:
            self.docs[new["_id"]] = new

    def create(self) -> None:
        object_id = next(self._ids)
        self.docs[object_id] = assemble(
            NAMING, object_id, {"n": 0}, root_metadata(NAMING, AGENT, next(self._clock))
        )

    def update(self, node: Document) -> None:
        changes = ChangeSet([node])
        history.add_version(NAMING, changes, node, {"n": 1}, AGENT, next(self._clock), next(self._ids))
        self.apply(changes)

    def delete(self, node: Document, agent: str) -> None:
        changes = ChangeSet(self.tree_of(node))
        history.delete(changes, node, agent, next(self._clock))
        self.apply(changes)

    def release(self, node: Document, agent: str) -> None:
        changes = ChangeSet(self.tree_of(node))
        history.release(changes, node, agent, next(self._clock), None)
        self.apply(changes)


operations = st.lists(
    st.tuples(
        st.sampled_from(["create", "update", "delete", "release"]), st.integers(0, 10_000), st.booleans()
    ),
    min_size=1,
    max_size=40,
)


def run(ops: list[tuple[str, int, bool]]) -> Store:
    store = Store()
    store.create()
    for name, pick, as_stranger in ops:
        live = store.live()
        if name == "create" or not live:
            store.create()
            continue
        node = live[pick % len(live)]
        agent = STRANGER if as_stranger else AGENT
        try:
            if name == "update":
                store.update(node)
            elif name == "delete":
                store.delete(node, agent)
            else:
                store.release(node, agent)
        except errors.RerumError as refused:
            assert refused.status in (401, 403)
            assert name != "update"
            assert as_stranger or is_released(node)
    return store


def _parent(store: Store, doc: Document) -> Document | None:
    previous = doc["__rerum"]["history"]["previous"]
    return next((d for d in store.live() if d["@id"] == previous), None)


def _released_ancestor(store: Store, doc: Document) -> str:
    parent = _parent(store, doc)
    while parent is not None and not is_released(parent):
        parent = _parent(store, parent)
    return "" if parent is None else parent["@id"]


@settings(max_examples=300, deadline=None)
@given(operations)
def test_history_links_are_symmetric_after_any_writes(ops: list[tuple[str, int, bool]]) -> None:
    store = run(ops)
    by_uri = {doc["@id"]: doc for doc in store.live()}
    for doc in store.live():
        links = doc["__rerum"]["history"]["next"]
        assert len(links) == len(set(links))
        for child_uri in links:
            assert child_uri in by_uri, "next points at a deleted or missing document"
            assert by_uri[child_uri]["__rerum"]["history"]["previous"] == doc["@id"]
        parent = _parent(store, doc)
        if parent is not None:
            assert doc["@id"] in parent["__rerum"]["history"]["next"]


@settings(max_examples=300, deadline=None)
@given(operations)
def test_prime_names_the_root_the_previous_chain_reaches(ops: list[tuple[str, int, bool]]) -> None:
    store = run(ops)
    for doc in store.live():
        ancestor, parent = doc, _parent(store, doc)
        while parent is not None:
            ancestor, parent = parent, _parent(store, parent)
        if ancestor is doc:
            assert doc["__rerum"]["history"]["prime"] == "root"
        else:
            assert ancestor["__rerum"]["history"]["prime"] == "root"
            assert doc["__rerum"]["history"]["prime"] == ancestor["@id"]


@settings(max_examples=300, deadline=None)
@given(operations)
def test_releases_point_at_the_nearest_released_relatives(ops: list[tuple[str, int, bool]]) -> None:
    store = run(ops)
    live = store.live()
    for doc in live:
        assert doc["__rerum"]["releases"]["previous"] == _released_ancestor(store, doc)
        nearest_below = {
            d["@id"] for d in live if is_released(d) and _released_ancestor_or_self_above(store, d, doc)
        }
        assert set(doc["__rerum"]["releases"]["next"]) == nearest_below


def _released_ancestor_or_self_above(store: Store, released: Document, ancestor: Document) -> bool:
    """Whether ``released`` lies below ``ancestor`` with no other released document in between."""
    parent = _parent(store, released)
    while parent is not None:
        if parent["@id"] == ancestor["@id"]:
            return True
        if is_released(parent):
            return False
        parent = _parent(store, parent)
    return False


def test_worked_example_release_tree_is_nearest_only() -> None:
    store = Store()
    store.create()
    a = store.live()[0]
    store.update(a)
    b = next(d for d in store.live() if d["_id"] != a["_id"])
    store.update(b)
    c = next(d for d in store.live() if d["_id"] not in (a["_id"], b["_id"]))
    store.release(store.docs[b["_id"]], AGENT)
    store.release(store.docs[c["_id"]], AGENT)
    assert store.docs[a["_id"]]["__rerum"]["releases"]["next"] == [b["@id"]]
    assert store.docs[b["_id"]]["__rerum"]["releases"]["next"] == [c["@id"]]
    assert store.docs[c["_id"]]["__rerum"]["releases"]["replaces"] == b["@id"]
    assert store.docs[c["_id"]]["__rerum"]["releases"]["previous"] == b["@id"]

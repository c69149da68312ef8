"""What a correct server answers, state by state: RERUM's version rules replayed on one object, pure.

The writes to one logical object are never concurrent (the workload serialises them), so they are
totally ordered by their ``seq`` and the object has one state per prefix of them: state 0 (nothing
exists), state 1 (after the create), ... state m. ``ObjectModel`` builds these states and gives the
exact answer each read would get in each of them; the checker then asks which states a read's answer
is consistent with. Only the rules the workload exercises are modelled: create, overwrite, update,
patch, release (the ``releases.next`` of ancestors) and delete (with tree healing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rerum_server.verify.history import Observation, Operation, View

_WORD = re.compile(r"\w+")
ORDERED_READS = ("id", "history", "since")  # answers compared as lists; query and search as sets


@dataclass(frozen=True)
class Version:
    """One key of the object in one state."""

    key: str
    content: dict[str, Any]
    previous: str | None = None
    deleted: bool = False
    released: bool = False
    history_next: tuple[str, ...] = ()
    releases_next: tuple[str, ...] = ()

    @property
    def obj(self) -> str | None:
        value = self.content.get("obj")
        return value if isinstance(value, str) else None

    def view(self) -> View:
        """The ``View`` a read of this key shows (a deleted key shows only its shell)."""
        if self.deleted:
            return View(self.key, self.obj, None, deleted=True)
        seq = self.content.get("seq")
        return View(
            self.key,
            self.obj,
            seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            released=self.released,
            history_next=self.history_next,
            releases_next=self.releases_next,
        )


Tree = dict[str, Version]
# A comparable answer: (status, views as a tuple for ordered reads or a frozenset for query/search).
Answer = tuple[int, tuple[View, ...] | frozenset[View]]


def matches_filter(content: dict[str, Any], query: dict[str, Any]) -> bool:
    """Equality on top-level fields: the only filters the workload sends."""
    return all(name in content and content[name] == value for name, value in query.items())


def searchable_words(content: dict[str, Any]) -> set[str]:
    """The words RERUM indexes for search that the workload writes: those of ``body.value``."""
    body = content.get("body")
    value = body.get("value") if isinstance(body, dict) else None
    return {word.lower() for word in _WORD.findall(value)} if isinstance(value, str) else set()


def matches_search(content: dict[str, Any], text: str) -> bool:
    """``/search``: any of the words of ``text``."""
    return bool(searchable_words(content) & {word.lower() for word in _WORD.findall(text)})


def _ancestors(tree: Tree, version: Version) -> list[Version]:
    found: list[Version] = []
    seen = {version.key}
    previous = version.previous
    while previous is not None and previous in tree and previous not in seen:
        seen.add(previous)
        found.append(tree[previous])
        previous = tree[previous].previous
    return found


def _descendants(tree: Tree, version: Version) -> list[Version]:
    found: list[Version] = []
    seen = {version.key}

    def walk(node: Version) -> None:
        for key in node.history_next:
            if key in tree and key not in seen:
                seen.add(key)
                found.append(tree[key])
                walk(tree[key])

    walk(version)
    return found


def apply_write(tree: Tree, write: Operation, key: str | None) -> Tree:
    """The tree after ``write`` (``key``: the key it created, for create/update/patch).

    A write the server would refuse (its target missing, deleted, or released for overwrite and
    delete) leaves the tree as it is.
    """
    marker = write.wrote
    content = dict(marker.content or {}) if marker is not None else {}
    target = tree.get(write.key or "")
    live = target is not None and not target.deleted
    out = dict(tree)
    if write.kind == "create" and key is not None:
        out[key] = Version(key, content)
    elif write.kind == "overwrite" and live and target is not None and not target.released:
        out[target.key] = replace(target, content=content)
    elif write.kind in ("update", "patch") and live and target is not None and key is not None:
        if write.kind == "patch":
            # PATCH replaces the keys the original has; ``null`` removes one.
            merged = {name: content.get(name, value) for name, value in target.content.items()}
            content = {name: value for name, value in merged.items() if value is not None}
        out[key] = Version(key, content, previous=target.key)
        out[target.key] = replace(target, history_next=(*target.history_next, key))
    elif write.kind == "release" and live and target is not None and not target.released:
        released = replace(target, released=True)
        out[target.key] = released
        shadowed = set(target.releases_next)
        # Every ancestor up to the nearest released one lists the new release (RERUM's releases tree).
        for ancestor in _ancestors(out, released):
            following = tuple(k for k in ancestor.releases_next if k not in shadowed)
            if target.key not in following:
                following = (*following, target.key)
            out[ancestor.key] = replace(ancestor, releases_next=following)
            if ancestor.released:
                break
    elif write.kind == "delete" and live and target is not None and not target.released:
        for child_key in target.history_next:
            if child_key in out:
                out[child_key] = replace(out[child_key], previous=target.previous)
        parent = out.get(target.previous or "")
        if parent is not None and not parent.deleted:
            following = tuple(k for k in parent.history_next if k != target.key)
            following += tuple(k for k in target.history_next if k not in following)
            out[parent.key] = replace(parent, history_next=following)
        out[target.key] = replace(target, deleted=True, history_next=(), releases_next=())
    return out


def _query_key(read: Operation) -> tuple[str, str | None, str | None, str | None]:
    query = None if read.filter is None else json.dumps(read.filter, sort_keys=True)
    return (read.kind, read.key, query, read.text)


class ObjectModel:
    """The states of one object under its writes, and the answer of any read in any state."""

    def __init__(self, obj: str, writes: Sequence[Operation], created_keys: Sequence[str | None]) -> None:
        """``writes`` in ``seq`` order; ``created_keys[i]`` is the key write i created (or None)."""
        self.obj = obj
        self.writes = tuple(writes)
        self.states: list[Tree] = [{}]
        for write, key in zip(self.writes, created_keys, strict=True):
            self.states.append(apply_write(self.states[-1], write, key))
        self._answers: dict[tuple[Any, ...], Answer] = {}

    @property
    def last(self) -> int:
        """The index of the last state (the number of writes)."""
        return len(self.writes)

    def answer(self, read: Operation, state: int) -> Answer:
        """The answer ``read`` gets from a correct server while the object is in ``state``."""
        cache_key = (*_query_key(read), state)
        if cache_key not in self._answers:
            self._answers[cache_key] = self._compute(read, self.states[state])
        return self._answers[cache_key]

    def _compute(self, read: Operation, tree: Tree) -> Answer:
        if read.kind in ORDERED_READS:
            node = tree.get(read.key or "")
            if read.kind == "id":
                return (404, ()) if node is None else (200, (node.view(),))
            if node is None or node.deleted:
                return (404, ())
            walk = _ancestors if read.kind == "history" else _descendants
            return (200, tuple(version.view() for version in walk(tree, node)))
        if read.kind == "query":
            query = read.filter or {}
            hits = (v for v in tree.values() if not v.deleted and matches_filter(v.content, query))
        elif read.kind == "search":
            text = read.text or ""
            hits = (v for v in tree.values() if not v.deleted and matches_search(v.content, text))
        else:
            raise ValueError(f"not a read: {read.kind}")
        return (200, frozenset(version.view() for version in hits))


def observed_answer(read: Operation) -> Answer:
    """The read's observation in the comparable form of ``ObjectModel.answer``."""
    observed = read.observed or Observation(0)
    if read.kind in ORDERED_READS:
        return (observed.status, tuple(observed.views))
    return (observed.status, frozenset(observed.views))

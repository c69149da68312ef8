"""Version trees: new versions, the walks of ``/history`` and ``/since``, delete healing, releases.

Every function works on documents already loaded (the transaction holds the tree's lock), records
its effect in a ``ChangeSet`` and performs no I/O.
"""

from __future__ import annotations

import copy

from rerum_server import errors
from rerum_server.versioning.change import ChangeSet
from rerum_server.versioning.metadata import (
    Document,
    Naming,
    assemble,
    is_deleted,
    is_released,
    last_path_segment,
    version_metadata,
)
from rerum_server.versioning.ownership import is_generator


def tree_root_id(doc: Document) -> str | None:
    """The ``_id`` of the root of the document's version tree (None for a deleted shell)."""
    rerum = doc.get("__rerum")
    if not isinstance(rerum, dict):
        return None
    prime = rerum.get("history", {}).get("prime", "root")
    return doc["_id"] if prime == "root" else last_path_segment(str(prime))


def add_version(
    naming: Naming, changes: ChangeSet, original: Document, body: Document, agent: str, now: str, new_id: str
) -> Document:
    """A new version of ``original`` with ``body`` as its content; links it into ``history.next``."""
    if is_deleted(original):
        raise errors.Forbidden("The object you are trying to update is deleted. ")
    version = assemble(naming, new_id, body, version_metadata(naming, original, agent, now))
    changes.insert(version)
    parent = changes.get(original["_id"]) or copy.deepcopy(original)
    following = parent["__rerum"]["history"].setdefault("next", [])
    if version["@id"] not in following:
        following.append(version["@id"])
    changes.put(parent)
    return version


def _index_by_uri(tree: list[Document]) -> dict[str, Document]:
    return {doc["@id"]: doc for doc in tree if "@id" in doc}


def ancestors(node: Document, tree: list[Document]) -> list[Document]:
    """``/history``: the ancestors on the node's branch, nearest first, ending with the root."""
    by_uri = _index_by_uri(tree)
    found: list[Document] = []
    seen = {node.get("@id")}
    previous = node["__rerum"]["history"].get("previous", "")
    while previous and previous in by_uri and previous not in seen:
        ancestor = by_uri[previous]
        seen.add(previous)
        history = ancestor["__rerum"]["history"]
        if not history.get("previous") and history.get("prime") != "root":
            break
        found.append(ancestor)
        previous = history.get("previous", "")
    return found


def descendants(node: Document, tree: list[Document]) -> list[Document]:
    """``/since``: every descendant, depth-first pre-order along ``history.next`` in stored order."""
    by_uri = _index_by_uri(tree)
    found: list[Document] = []
    seen = {node.get("@id")}

    def walk(doc: Document) -> None:
        for uri in doc["__rerum"]["history"].get("next", []):
            child = by_uri.get(uri)
            if child is None or uri in seen:
                continue
            seen.add(uri)
            found.append(child)
            walk(child)

    walk(node)
    return found


def delete(changes: ChangeSet, node: Document, agent: str, now: str) -> None:
    """Replace ``node`` by its deleted shell and heal the version tree around it.

    ``changes`` must hold the node's whole tree. Children take the node's place: they link to its
    parent (or become roots of their own trees when the node was the root) and the parent's
    ``history.next`` lists them where the node was. ``releases`` pointers stay as they are: a
    released node cannot be deleted, so none of them names the node.
    """
    if is_deleted(node):
        raise errors.Forbidden("The object you are trying to delete is already deleted. ")
    if is_released(node):
        raise errors.Forbidden("The object you are trying to delete is released. Fork to make changes. ")
    if not is_generator(node, agent):
        raise errors.Unauthorized(
            "You are not the generating agent for this object and so are not authorized to delete it. "
        )
    history = node["__rerum"]["history"]
    was_root = history.get("prime") == "root"
    previous = history.get("previous", "")
    for child_uri in history.get("next", []):
        child = changes.by_uri(child_uri)
        if child is None:
            continue
        if was_root:
            for descendant in descendants(child, changes.all_current()):
                descendant["__rerum"]["history"]["prime"] = child["@id"]
                changes.put(descendant)
            child["__rerum"]["history"]["prime"] = "root"
        child["__rerum"]["history"]["previous"] = previous
        changes.put(child)
    parent = changes.by_uri(previous) if previous else None
    if parent is not None and not is_deleted(parent):
        following = [uri for uri in parent["__rerum"]["history"].get("next", []) if uri != node["@id"]]
        following += [uri for uri in history.get("next", []) if uri not in following]
        parent["__rerum"]["history"]["next"] = following
        changes.put(parent)
    changes.put(
        {
            "@id": node["@id"],
            "__deleted": {"object": node, "deletor": agent, "time": now},
            "_id": node["_id"],
        }
    )


def release(changes: ChangeSet, node: Document, agent: str, now: str, slug: str | None) -> Document:
    """Release ``node`` and maintain the releases tree; returns the released document.

    ``releases.previous`` of a node names its nearest released ancestor and ``releases.next`` its
    nearest released descendants. Releasing X therefore points the descendants that had X's nearest
    release at X, and, walking up, adds X to every ancestor's ``releases.next`` (dropping the releases
    X now stands in front of) up to and including the nearest released ancestor. The reference
    appended X to all ancestors and corrupted the lists (spec 13, item 15); this is the fix.
    """
    if is_deleted(node):
        raise errors.Forbidden("The object you are trying to release is deleted. ")
    messages: list[str] = []
    status = 0
    if is_released(node):
        messages.insert(0, "The object you are trying to release is already released. ")
        status = 403
    if not is_generator(node, agent):
        messages.insert(0, "You are not the generating agent for this object. You cannot release it. ")
        status = 401
    if status:
        raise errors.RerumError("".join(messages), status=status)

    rerum = node["__rerum"]
    releases = rerum.setdefault("releases", {"previous": "", "next": [], "replaces": ""})
    nearest = releases.get("previous", "")
    rerum["isReleased"] = now
    releases["replaces"] = nearest
    if slug is not None:
        rerum["slug"] = slug
    changes.put(node)

    tree = changes.all_current()
    for descendant in descendants(node, tree):
        descendant_releases = descendant["__rerum"].setdefault("releases", {})
        if descendant_releases.get("previous", "") == nearest:
            descendant_releases["previous"] = node["@id"]
            changes.put(descendant)
    shadowed = set(releases.get("next", []))
    for ancestor in ancestors(node, tree):
        ancestor_releases = ancestor["__rerum"].setdefault("releases", {})
        following = [uri for uri in ancestor_releases.get("next", []) if uri not in shadowed]
        if node["@id"] not in following:
            following.append(node["@id"])
        ancestor_releases["next"] = following
        changes.put(ancestor)
        if is_released(ancestor):
            break
    return node

"""Rewriting the object URIs of another deployment to this server's ``RERUM_ID_PREFIX``, pure.

Only identifiers of RERUM objects move: ``@id`` and ``id`` and the history and release links, in a
document and in the original kept inside a deleted shell. ``__rerum.generatedBy`` stays: it is the
agent URI that tokens carry in their agent claim, and the ownership rules compare it with that claim,
so rewriting it would lock every agent out of the objects it owns. Client data (a ``target`` naming
an old object, say) is not ours to rewrite either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rerum_server.versioning.metadata import Document


@dataclass(frozen=True)
class IdRewrite:
    """Replace the leading ``old`` of an object URI with ``new``."""

    old: str
    new: str

    def uri(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(self.old):
            return self.new + value[len(self.old) :]
        return value

    def document(self, doc: Document) -> bool:
        """Rewrite ``doc`` in place; True if anything changed."""
        changed = False
        for key in ("@id", "id"):
            if key in doc:
                new = self.uri(doc[key])
                changed |= new is not doc[key]
                doc[key] = new
        rerum = doc.get("__rerum")
        if isinstance(rerum, dict):
            for block, links in (("history", ("prime", "previous", "next")), ("releases", _RELEASE_LINKS)):
                if isinstance(rerum.get(block), dict):
                    changed |= self._links(rerum[block], links)
        deleted = doc.get("__deleted")
        if isinstance(deleted, dict) and isinstance(deleted.get("object"), dict):
            changed |= self.document(deleted["object"])
        return changed

    def _links(self, block: dict[str, Any], keys: tuple[str, ...]) -> bool:
        changed = False
        for key in keys:
            value = block.get(key)
            if isinstance(value, list):
                new: Any = [self.uri(item) for item in value]
                changed |= any(a is not b for a, b in zip(new, value, strict=True))
            else:
                new = self.uri(value)
                changed |= new is not value
            if key in block:
                block[key] = new
        return changed


_RELEASE_LINKS = ("previous", "next", "replaces")

"""Who may change what (spec 5.3), kept exactly as RERUM v1 has it.

Update, bulkUpdate, patch, set and unset fork any non-deleted object, released or not, owned or not.
Overwrite, delete and release require the generating agent and answer 401 otherwise.
"""

from __future__ import annotations

from rerum_server.versioning.metadata import Document


def is_generator(doc: Document, agent: str) -> bool:
    """Exact string equality with ``generatedBy``; an object without one belongs to everybody."""
    generated_by = doc.get("__rerum", {}).get("generatedBy")
    return (agent if generated_by is None else generated_by) == agent

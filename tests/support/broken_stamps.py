"""A deliberately broken stamp rule, for the differential test's negative control only: writes forget
the equality stamps of their number leaves, so cached queries on numbers are not invalidated."""

from __future__ import annotations

from rerum_server.app import RerumApp
from rerum_server.cache import stamps
from rerum_server.versioning.metadata import Document

_complete = stamps.document_query_stamps


def _without_number_leaves(doc: Document) -> set[str] | None:
    found = _complete(doc)
    if found is None:
        return None
    numbers = {
        stamps.equality_stamp(path, value)
        for path, value in stamps._leaves(doc)
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    return found - numbers


def create_app() -> RerumApp:
    """The ASGI factory of a cluster whose writes leave out the stamps of number leaves."""
    stamps.document_query_stamps = _without_number_leaves
    return RerumApp()

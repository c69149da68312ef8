"""The ``__rerum`` block, protected keys and id negotiation: RERUM's document shape rules, pure.

Nothing here reads a clock or mints an id; callers pass ``now`` (already formatted) and new ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

Document = dict[str, Any]

KNOWN_ID_CONTEXTS = (
    "store.rerum.io/v1/context.json",
    "iiif.io/api/presentation/3/context.json",
    "www.w3.org/ns/anno.jsonld",
    "www.w3.org/ns/oa.jsonld",
)


@dataclass(frozen=True)
class Naming:
    """Deployment-wide names that end up inside stored documents."""

    id_prefix: str
    context_url: str
    api_version: str = "1.1.0"


def format_timestamp(now: datetime) -> str:
    """RERUM's timestamp: UTC wall clock with milliseconds and no zone designator."""
    utc = now.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}"


def is_known_id_context(context: Any) -> bool:
    """True when a ``@context`` aliases ``@id`` to ``id`` (so ``id`` is an identifier, not data)."""
    if isinstance(context, str):
        return any(known in context for known in KNOWN_ID_CONTEXTS)
    if isinstance(context, list):
        return any(isinstance(item, str) and is_known_id_context(item) for item in context)
    return False


def is_deleted(doc: Document) -> bool:
    return "__deleted" in doc


def is_released(doc: Document) -> bool:
    return bool(doc.get("__rerum", {}).get("isReleased"))


def last_path_segment(uri: str) -> str:
    """The part of an object URI after its last ``/``: the ``_id`` or slug it names."""
    return uri.rstrip("/").rsplit("/", 1)[-1] if "/" in uri else uri


def is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def declared_id(body: Document) -> Any:
    """``body["@id"] ?? body.id``, as the reference reads the identifier of a request body."""
    value = body.get("@id")
    return body.get("id") if value is None else value


def content_of(body: Document, *, context_from: Document | None = None) -> Document:
    """The client's own keys: the body minus ``__rerum``, ``@id``, ``_id`` and ``@context``.

    ``id`` is an identifier (and dropped) only when the context in force is a known id-context;
    by default that is the body's own context.
    """
    context = (body if context_from is None else context_from).get("@context")
    drop_id = is_known_id_context(context)
    return {
        key: value
        for key, value in body.items()
        if key not in ("__rerum", "@id", "_id", "@context") and not (drop_id and key == "id")
    }


def assemble(naming: Naming, object_id: str, body: Document, rerum: Document) -> Document:
    """A stored document: ``@context`` (if the body has one), ``@id``, the body's keys, ``__rerum``, ``_id``."""
    doc: Document = {}
    if "@context" in body:
        doc["@context"] = body["@context"]
    doc["@id"] = naming.id_prefix + object_id
    doc.update(content_of(body))
    doc["__rerum"] = rerum
    doc["_id"] = object_id
    return doc


def root_metadata(
    naming: Naming, agent: str, now: str, *, previous: str = "", slug: str | None = None
) -> Document:
    """``__rerum`` of a new tree root (create, bulkCreate, import).

    Any ``__rerum`` the client sent is ignored entirely (the reference let clients plant
    ``releases.previous`` and extra keys; see the README's differences).
    """
    rerum: Document = {
        "@context": naming.context_url,
        "alpha": True,
        "APIversion": naming.api_version,
        "createdAt": now,
        "isOverwritten": "",
        "isReleased": "",
        "history": {"prime": "root", "previous": previous, "next": []},
        "releases": {"previous": "", "next": [], "replaces": ""},
        "generatedBy": agent,
    }
    if slug is not None:
        rerum["slug"] = slug
    return rerum


def version_metadata(naming: Naming, original: Document, agent: str, now: str) -> Document:
    """``__rerum`` of a new version derived from ``original`` (update, patch, set, unset, bulkUpdate)."""
    source = original["__rerum"]
    prime = source["history"]["prime"]
    releases = source.get("releases", {})
    # Fix of the reference: a released parent IS the nearest release of its child.
    nearest_release = original["@id"] if is_released(original) else releases.get("previous", "")
    return {
        "@context": naming.context_url,
        "alpha": True,
        "APIversion": naming.api_version,
        "createdAt": now,
        "isOverwritten": "",
        "isReleased": "",
        "history": {
            "prime": original["@id"] if prime == "root" else prime,
            "previous": original["@id"],
            "next": [],
        },
        "releases": {"previous": nearest_release, "next": [], "replaces": ""},
        "generatedBy": agent,
    }


def negotiate(doc: Document, id_prefix: str) -> Document:
    """The outbound form of a stored document: ``_id`` removed, ``@id`` → ``id`` for known id-contexts."""
    if not is_known_id_context(doc.get("@context")):
        return {key: value for key, value in doc.items() if key != "_id"}
    out: Document = {"@context": doc["@context"], "id": doc.get("id", id_prefix + str(doc.get("_id", "")))}
    for key, value in doc.items():
        if key not in ("@context", "id", "@id", "_id"):
            out[key] = value
    return out


def outbound_id(doc: Document, id_prefix: str) -> str | None:
    """The identifier a client sees (``Location``): ``id`` for known id-contexts, else ``@id``."""
    out = negotiate(doc, id_prefix)
    value = out.get("id") if is_known_id_context(doc.get("@context")) else out.get("@id")
    return value if isinstance(value, str) else None

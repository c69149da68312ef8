"""Gallery of Glosses (GoG) reads as MongoDB filters and pure document assembly (spec section 9).

The reference ran aggregation pipelines with ``$lookup``; here each stage is a filter the query
compiler turns into SQL, and the joins and the "expanded object" are built from the matched documents.
"""

from __future__ import annotations

from typing import Any

from rerum_server.versioning.metadata import Document, last_path_segment

PRODUCTION_AGENT_ID = "61043ad4ffce846a83e700dd"
DEVELOPMENT_AGENT_ID = "5afeebf3e4b0b0d588705d90"
_ANNOTATION = {"$or": [{"type": "Annotation"}, {"@type": "Annotation"}, {"@type": "oa:Annotation"}]}
_LEAF = {"__rerum.history.next": {"$exists": True, "$size": 0}}
_FRAGMENT = {"$or": [{"type": "WitnessFragment"}, {"@type": "WitnessFragment"}]}
ASSEMBLER_NOTE = (
    "Learn about the assembler for this object at https://github.com/CenterForDigitalHumanities/deer"
)


def both_schemes(uri: str) -> list[str]:
    """``uri`` in its http and https forms (the GoG data uses both)."""
    if uri.startswith("https://"):
        return ["http://" + uri.removeprefix("https://"), uri]
    if uri.startswith("http://"):
        return [uri, "https://" + uri.removeprefix("http://")]
    return [uri]


def is_gog_agent(agent: str, *, development_too: bool = False) -> bool:
    allowed = (PRODUCTION_AGENT_ID, DEVELOPMENT_AGENT_ID) if development_too else (PRODUCTION_AGENT_ID,)
    return last_path_segment(agent) in allowed


def manuscript_annotations(manuscript: str, agent: str) -> dict[str, Any]:
    """Current annotations by ``agent`` that place a fragment in the manuscript witness."""
    forms = both_schemes(manuscript)
    return {
        "$and": [
            _LEAF,
            _ANNOTATION,
            {"$or": [{"body.partOf.value": {"$in": forms}}, {"body.partOf": {"$in": forms}}]},
            {"__rerum.generatedBy": {"$in": both_schemes(agent)}},
        ]
    }


def targets_of(annotation: Document) -> list[str]:
    target = annotation.get("target")
    if isinstance(target, str):
        return [target]
    if isinstance(target, list):
        return [item for item in target if isinstance(item, str)]
    return []


def fragments(uris: list[str], *, leaf_only: bool) -> dict[str, Any]:
    """WitnessFragment documents with one of the ``uris`` as ``@id`` (current versions if ``leaf_only``)."""
    conditions: list[dict[str, Any]] = [{"@id": {"$in": uris}}, _FRAGMENT]
    if leaf_only:
        conditions.append(_LEAF)
    return {"$and": conditions}


def gloss_references(fragment_uris: list[str]) -> dict[str, Any]:
    """Annotations targeting one of the fragments that reference a gloss."""
    return {"$and": [{"target": {"$in": fragment_uris}}, {"body.references": {"$exists": True}}]}


def joined(left: list[Document], right: list[Document]) -> list[tuple[Document, list[Document]]]:
    """Each ``left`` document with the ``right`` documents whose ``@id`` it targets (``$lookup``)."""
    by_uri: dict[str, list[Document]] = {}
    for doc in right:
        by_uri.setdefault(doc.get("@id", ""), []).append(doc)
    return [(doc, [match for uri in targets_of(doc) for match in by_uri.get(uri, [])]) for doc in left]


def reference_values(annotation: Document) -> list[Any]:
    """``body.references.value`` of an annotation, unwound (bodies and values may be arrays)."""
    bodies = annotation.get("body")
    values: list[Any] = []
    for body in bodies if isinstance(bodies, list) else [bodies]:
        references = body.get("references") if isinstance(body, dict) else None
        for reference in references if isinstance(references, list) else [references]:
            value = reference.get("value") if isinstance(reference, dict) else None
            values.extend(value if isinstance(value, list) else [] if value is None else [value])
    return values


def describing_annotations(obj: Document) -> dict[str, Any]:
    """Current annotations by the object's own generator that target the object."""
    uri = obj.get("@id") or obj.get("id") or ""
    forms = both_schemes(uri) if uri.startswith("http") else [uri]
    generator = (obj.get("__rerum") or {}).get("generatedBy", "")
    target = {
        "$or": [{"target": {"$in": forms}}, {"target.@id": {"$in": forms}}, {"target.id": {"$in": forms}}]
    }
    return {"$and": [_LEAF, _ANNOTATION, target, {"__rerum.generatedBy": {"$in": both_schemes(generator)}}]}


def expand(obj: Document, annotations: list[Document]) -> Document:
    """The "expanded" object: each single-key annotation body becomes (or joins) that key's value."""
    expanded = dict(obj)
    for annotation in annotations:
        body = annotation.get("body")
        if not isinstance(body, dict) or len(body) != 1:
            continue
        ((key, entry),) = body.items()
        fields = entry if isinstance(entry, dict) else {}
        value = {
            "value": _first(fields.get("value"), entry),
            "source": _first(
                fields.get("source"),
                {
                    "citationSource": _first(annotation.get("@id"), annotation.get("id")),
                    "citationNote": _first(
                        annotation.get("label"), annotation.get("name"), "Composed object from DEER"
                    ),
                    "comment": ASSEMBLER_NOTE,
                },
            ),
            "evidence": _first(fields.get("evidence"), annotation.get("evidence"), ""),
        }
        if key in expanded:
            current = expanded[key]
            expanded[key] = [*(current if isinstance(current, list) else [current]), value]
        else:
            expanded[key] = value
    return expanded


def _first(*values: Any) -> Any:
    """JavaScript's ``a ?? b ?? c``: the first value that is not null/missing."""
    return next((value for value in values if value is not None), None)

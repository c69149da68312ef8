"""Pure document-shape rules: contexts, negotiation, timestamps, ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rerum_server.identifiers import is_object_id, new_object_id
from rerum_server.versioning.metadata import (
    Naming,
    assemble,
    content_of,
    format_timestamp,
    is_known_id_context,
    last_path_segment,
    negotiate,
    outbound_id,
    root_metadata,
)

PREFIX = "https://store.example/v1/id/"
NAMING = Naming(id_prefix=PREFIX, context_url="https://store.example/v1/context.json")


@pytest.mark.parametrize(
    ("context", "known"),
    [
        ("http://store.rerum.io/v1/context.json", True),
        ("https://iiif.io/api/presentation/3/context.json", True),
        ("http://www.w3.org/ns/anno.jsonld", True),
        ("http://www.w3.org/ns/oa.jsonld", True),
        (["http://example.org/x", "http://www.w3.org/ns/anno.jsonld"], True),
        ("http://iiif.io/api/presentation/2/context.json", False),
        ({"@vocab": "http://www.w3.org/ns/anno.jsonld"}, False),
        ([{"a": "http://www.w3.org/ns/anno.jsonld"}], False),
        (None, False),
        (5, False),
    ],
)
def test_known_id_contexts_by_substring(context: object, known: bool) -> None:
    assert is_known_id_context(context) is known


def test_timestamp_is_utc_with_milliseconds_and_no_zone() -> None:
    moment = datetime(2025, 6, 24, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(moment) == "2025-06-24T10:00:00.123"


def test_new_ids_are_unique_object_ids() -> None:
    ids = {new_object_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(is_object_id(value) and value == value.lower() for value in ids)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("0123456789abcdef01234567", True),
        ("0123456789ABCDEF01234567", True),
        ("0123456789abcdef0123456", False),
        ("0123456789abcdef0123456g", False),
        (123, False),
        (None, False),
    ],
)
def test_object_id_validity(value: object, valid: bool) -> None:
    assert is_object_id(value) is valid


def test_known_context_output_has_id_after_context_and_no_at_id() -> None:
    doc = assemble(
        NAMING,
        "abc",
        {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "A"},
        root_metadata(NAMING, "agent", "t"),
    )
    out = negotiate(doc, PREFIX)
    assert list(out)[:3] == ["@context", "id", "type"]
    assert out["id"] == PREFIX + "abc"
    assert "@id" not in out and "_id" not in out
    assert outbound_id(doc, PREFIX) == PREFIX + "abc"


def test_unknown_context_keeps_at_id_and_stored_id() -> None:
    doc = assemble(
        NAMING, "abc", {"@context": "http://example.org/c", "id": "mine"}, root_metadata(NAMING, "a", "t")
    )
    out = negotiate(doc, PREFIX)
    assert out["@id"] == PREFIX + "abc" and out["id"] == "mine"
    assert outbound_id(doc, PREFIX) == PREFIX + "abc"


def test_stored_id_wins_over_computed_one_under_known_context() -> None:
    doc = {"@context": "http://www.w3.org/ns/anno.jsonld", "@id": PREFIX + "abc", "id": "kept", "_id": "abc"}
    assert negotiate(doc, PREFIX)["id"] == "kept"


def test_protected_keys_never_reach_content() -> None:
    body = {
        "@context": "http://www.w3.org/ns/anno.jsonld",
        "@id": "x",
        "_id": "y",
        "__rerum": {},
        "id": "z",
        "k": 1,
    }
    assert content_of(body) == {"k": 1}
    assert content_of({"id": "z", "k": 1}) == {"id": "z", "k": 1}


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=5), max_size=8))
def test_assembled_documents_put_identity_first_and_metadata_last(body: dict) -> None:
    doc = assemble(NAMING, "0" * 24, body, root_metadata(NAMING, "agent", "now"))
    keys = list(doc)
    assert keys[-2:] == ["__rerum", "_id"]
    assert keys[1 if "@context" in body else 0] == "@id"
    assert doc["@id"] == PREFIX + "0" * 24
    assert doc["__rerum"]["history"] == {"prime": "root", "previous": "", "next": []}


@pytest.mark.parametrize(
    ("uri", "segment"),
    [("https://store.example/v1/id/abc", "abc"), ("https://store.example/v1/id/abc/", "abc"), ("abc", "abc")],
)
def test_last_path_segment(uri: str, segment: str) -> None:
    assert last_path_segment(uri) == segment


def test_timestamps_sort_like_time() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    stamps = [format_timestamp(base + timedelta(milliseconds=n * 7)) for n in range(500)]
    assert stamps == sorted(stamps)

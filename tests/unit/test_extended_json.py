"""Extended JSON → stored documents, and id rewriting, checked against pymongo's own ``bson.json_util``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from bson import Binary, Decimal128, Int64, ObjectId, Regex, Timestamp, json_util
from bson.datetime_ms import DatetimeMS
from bson.json_util import CANONICAL_JSON_OPTIONS, RELAXED_JSON_OPTIONS
from bson.max_key import MaxKey
from hypothesis import given, settings
from hypothesis import strategies as st

from rerum_server.interchange.extended_json import MAX_DEPTH, format_millis
from rerum_server.interchange.prefixes import IdRewrite
from rerum_server.interchange.records import Rejected, read_document

MODES = {"canonical": CANONICAL_JSON_OPTIONS, "relaxed": RELAXED_JSON_OPTIONS}

_dates = st.integers(
    int((datetime(1, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000),
    int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
    * 1000,
).map(lambda ms: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms))
_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: (
        abs(d) < Decimal("1e300") and len(d.as_tuple().digits) <= 34 and -6000 < d.as_tuple().exponent < 6000
    )
)
# U+0000 is refused (jsonb cannot hold it): tested on its own below.
_text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _text,
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1).map(Int64),
    st.floats(allow_nan=False, allow_infinity=False),
    _decimals.map(Decimal128),
    st.binary(min_size=12, max_size=12).map(ObjectId),
    _dates,
)
_keys = _text.filter(lambda k: not k.startswith("$"))
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


def expected(value: Any) -> Any:
    """What the store must hold for a BSON value: the mapping docs/import.md states."""
    if isinstance(value, dict):
        return {key: expected(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expected(item) for item in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return format_millis(value.astimezone(UTC))
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, Int64):
        return int(value)
    return value


def stored(line: str, rewrite: IdRewrite | None = None) -> dict[str, Any]:
    """The stored document, parsed with decimals kept exact (as PostgreSQL's jsonb holds them)."""
    import json

    body = read_document(line.encode(), rewrite).body
    return json.loads(body, parse_float=Decimal, parse_int=int)


def as_exact(value: Any) -> Any:
    """``value`` with floats as the decimals their shortest text spells (how the body writes them)."""
    if isinstance(value, dict):
        return {key: as_exact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_exact(item) for item in value]
    if isinstance(value, float):
        return Decimal(orjson.dumps(value).decode())
    return value


def document(content: dict[str, Any]) -> dict[str, Any]:
    return {
        "@id": "https://store.rerum.io/v1/id/abc",
        **content,
        "__rerum": {"history": {"prime": "root", "previous": "", "next": []}, "createdAt": content.get("d")},
        "_id": ObjectId(b"012345678901"),
    }


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=300, deadline=None)
@given(content=st.dictionaries(_keys.filter(lambda k: k not in ("@id", "_id", "__rerum")), _values))
def test_every_json_util_document_reads_back_as_the_mapped_values_in_key_order(
    mode: str, content: dict
) -> None:
    doc = document(content)
    line = json_util.dumps(doc, json_options=MODES[mode])
    got = stored(line)
    assert got == as_exact(expected(doc))
    assert list(got) == list(doc)  # key order, at the top level (and, by equality of dicts, below)
    assert [list(v) for v in got.values() if isinstance(v, dict)] == [
        list(v) for v in doc.values() if isinstance(v, dict)
    ]


def test_the_mapping_of_each_type() -> None:
    moment = datetime(2021, 3, 1, 1, 2, 3, 456789, tzinfo=UTC)
    doc = document(
        {"oid": ObjectId("6040ABCDEF0123456789abcd".lower()), "d": moment, "old": datetime(1960, 1, 1),
         "long": Int64(2**62), "int": 7, "double": 1.0, "neg0": -0.0, "dec": Decimal128("1.10"),
         "big": Decimal128("123456789012345678901234567890"), "tiny": Decimal128("1E-6100")}
    )  # fmt: skip
    for options in MODES.values():
        body = read_document(json_util.dumps(doc, json_options=options).encode()).body
        assert '"oid":"6040abcdef0123456789abcd"' in body
        assert '"d":"2021-03-01T01:02:03.456"' in body
        assert '"old":"1960-01-01T00:00:00.000"' in body
        assert '"long":4611686018427387904,"int":7,"double":1.0,"neg0":-0.0' in body
        assert '"dec":1.10,"big":123456789012345678901234567890,"tiny":1E-6100' in body
        assert '"_id":"303132333435363738393031"' in body


def test_an_oid_in_upper_case_is_stored_in_lower_case_as_objectid_spells_it() -> None:
    line = '{"@id":"x","__rerum":{"history":{"prime":"root","previous":"","next":[]}},"_id":{"$oid":"ABCDEF0123456789ABCDEF01"}}'
    assert read_document(line.encode()).id == "abcdef0123456789abcdef01"


def test_a_document_without_wrappers_is_stored_as_written() -> None:
    line = b'{"@id": "x", "n": 1.10, "e": 1E5, "__deleted": {"object": {}}, "_id": "a"}\n'
    assert read_document(line).body == line.decode().strip()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), "NaN, which JSON cannot hold"),
        (float("-inf"), "-Infinity, which JSON cannot hold"),
        (Decimal128("NaN"), "decimal NaN"),
        (Decimal128("1E+400"), "beyond the range the server can read back"),
        (Binary(b"\x00\x01"), "BSON binary value"),
        (Regex("^a"), "BSON regularExpression value"),
        (Timestamp(1, 2), "BSON timestamp value"),
        (MaxKey(), "BSON maxKey value"),
        (DatetimeMS(2**50), "outside the years 1-9999"),
    ],
)
def test_values_without_a_faithful_json_form_are_rejected(value: Any, reason: str) -> None:
    for options in MODES.values():
        line = json_util.dumps(document({"v": {"inner": [value]}}), json_options=options)
        with pytest.raises(Rejected, match=reason):
            read_document(line.encode())


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object but list"),
        (b'{"@id": "x", "__rerum": {"history": {"prime": "root", "previous": "", "next": []}}}', "no _id"),
        (b'{"_id": "a", "@id": "x"}', "neither __rerum nor __deleted"),
        (b'{"_id": "a", "@id": "x", "__rerum": {"history": {"prime": "root"}}}', "history"),
        (b'{"_id": "a", "@id": "x", "__deleted": {"object": 1}}', "__deleted.object"),
        (b'{"_id": {"$oid": "12"}, "@id": "x"}', "not 24 hexadecimal digits"),
        (b'{"_id": "a", "@id": "x", "n": {"$numberLong": "9223372036854775808"}}', "out of its range"),
        (b'{"_id": "a", "@id": "x", "n": {"$date": "yesterday"}}', "not an ISO-8601 date"),
        (b'{"_id": "a", "@id": "x", "n": {"$oid": "6040abcdef0123456789abcd", "more": 1}}', "other keys"),
        (b'{"_id": "a", "@id": "x\\u0000", "__deleted": {"object": {}}}', "U\\+0000"),
    ],
)
def test_malformed_documents_are_rejected_with_a_reason(line: bytes, reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        read_document(line)


def test_documents_nest_at_most_as_deep_as_mongodb_allows() -> None:
    def nested(levels: int) -> str:
        return "[" * (levels - 1) + "]" * (levels - 1)

    head = '{"_id": "a", "@id": "x", "__deleted": {"object": {}}, "v": '
    read_document((head + nested(MAX_DEPTH) + "}").encode())
    with pytest.raises(Rejected, match="deeper than 100 levels"):
        read_document((head + nested(MAX_DEPTH + 1) + "}").encode())


def test_unknown_dollar_keys_are_data() -> None:
    line = b'{"_id": "a", "@id": "x", "__deleted": {"object": {}}, "q": {"$in": [1], "$foo": {"$oid": 3}}}'
    with pytest.raises(Rejected, match=r"\$oid whose value is not a string"):
        read_document(line)
    assert '"q":{"$in":[1]}' in read_document(line.replace(b', "$foo": {"$oid": 3}', b"")).body.replace(
        " ", ""
    )


OLD, NEW = "https://store.rerum.io/v1/id/", "http://localhost:3001/v1/id/"


def test_rewriting_moves_ids_and_every_history_and_release_link_but_not_the_agent_or_data() -> None:
    doc = {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": OLD + "a",
        "@id": OLD + "a",
        "target": OLD + "other",
        "__rerum": {
            "history": {"prime": OLD + "r", "previous": OLD + "p", "next": [OLD + "n1", "https://else/n2"]},
            "releases": {"previous": OLD + "rp", "next": [OLD + "rn"], "replaces": ""},
            "generatedBy": OLD + "agent",
        },
        "_id": "a",
    }
    shell = {
        "@id": OLD + "d",
        "__deleted": {"object": {**doc, "@id": OLD + "d"}, "deletor": OLD + "agent"},
        "_id": "d",
    }
    rewrite = IdRewrite(OLD, NEW)
    got = stored(orjson.dumps(doc).decode(), rewrite)
    assert got["id"] == got["@id"] == NEW + "a"
    assert got["target"] == OLD + "other"
    assert got["__rerum"]["history"] == {
        "prime": NEW + "r",
        "previous": NEW + "p",
        "next": [NEW + "n1", "https://else/n2"],
    }
    assert got["__rerum"]["releases"] == {"previous": NEW + "rp", "next": [NEW + "rn"], "replaces": ""}
    assert got["__rerum"]["generatedBy"] == OLD + "agent"
    deleted = stored(orjson.dumps(shell).decode(), rewrite)
    assert deleted["@id"] == NEW + "d"
    assert deleted["__deleted"]["object"]["@id"] == NEW + "d"
    assert deleted["__deleted"]["object"]["__rerum"]["history"]["prime"] == NEW + "r"
    assert deleted["__deleted"]["deletor"] == OLD + "agent"
    assert stored(orjson.dumps(doc).decode(), IdRewrite("https://nowhere/", NEW)) == doc


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([OLD, NEW, "root", "", "https://else/"]), min_size=1, max_size=5),
    _text.filter(lambda t: len(t) <= 8),
)
def test_rewriting_twice_changes_nothing_more_and_keeps_other_uris(bases: list[str], tail: str) -> None:
    links = [base + tail if base not in ("root", "") else base for base in bases]
    doc = {
        "@id": links[0],
        "__rerum": {"history": {"prime": links[0], "previous": links[-1], "next": links}},
        "_id": "a",
    }
    rewrite = IdRewrite(OLD, NEW)
    once = stored(orjson.dumps(doc).decode(), rewrite)
    assert stored(orjson.dumps(once).decode(), rewrite) == once
    assert once["__rerum"]["history"]["next"] == [
        NEW + link[len(OLD) :] if link.startswith(OLD) else link for link in links
    ]

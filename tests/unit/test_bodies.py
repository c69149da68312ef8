"""RERUM's content-type (415) table, pagination parsing and body parsing, without servers."""

from __future__ import annotations

import pytest

from rerum_server import errors
from rerum_server.web.bodies import (
    MAX_DOCUMENT_DEPTH,
    TOO_DEEP,
    pagination,
    parse_body,
    parse_int,
    require_content_type,
)
from rerum_server.web.http import Request


def _request(content_type: str | None = None, query: str = "") -> Request:
    headers = {} if content_type is None else {"content-type": content_type}
    return Request("POST", "/", query, headers)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/ld+json",
        "application/json; charset=utf-8",
        "application/ld+json; charset=utf-8",
        'application/json; a="b,c"; xy=z',
        "Application/JSON",
    ],
)
def test_json_routes_accept(content_type: str) -> None:
    require_content_type(_request(content_type))


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, "Missing or empty Content-Type header."),
        ("", "Missing or empty Content-Type header."),
        (
            "text/plain",
            "Unsupported Content-Type: text/plain. This endpoint requires application/json or "
            "application/ld+json.",
        ),
        (
            "application/json;",
            "Multiple Content-Type values are not allowed. Provide exactly one Content-Type header.",
        ),
        ("application/json text/plain", "Multiple"),
        ("application/json, text/plain", "Multiple"),
        ("application/json; charset=utf-8, text/plain", "Multiple"),
        ("application/json; text/plain", "Multiple"),
        ("application/json; charset=utf-8; text/plain", "Multiple"),
        ("application/json; a=b; c=d text/plain", "Multiple"),
    ],
)
def test_json_routes_refuse(content_type: str | None, message: str) -> None:
    with pytest.raises(errors.UnsupportedMediaType) as refused:
        require_content_type(_request(content_type))
    assert refused.value.message.startswith(message)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", 'text/plain; a="b,c"'])
def test_search_routes_accept_text(content_type: str) -> None:
    require_content_type(_request(content_type), text_allowed=True)


def test_search_routes_refuse_xml_with_their_own_message() -> None:
    with pytest.raises(errors.UnsupportedMediaType) as refused:
        require_content_type(_request("application/xml"), text_allowed=True)
    assert refused.value.message == (
        "Unsupported Content-Type: application/xml. This endpoint requires application/json, "
        "application/ld+json, or text/plain."
    )


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("5", 5), ("1.9", 1), ("2e3", 2), ("12abc", 12), ("abc", None), (" -3", -3), ("+4", 4), ("", None)],
)
def test_parse_int_matches_javascript(raw: str, parsed: int | None) -> None:
    assert parse_int(raw, ceiling=10**6) == parsed


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("9" * 4301, 101),
        ("-" + "9" * 4301, -101),
        ("101", 101),
        ("100", 100),
        ("0" * 5000 + "42", 42),
        ("-0", 0),
    ],
)
def test_parse_int_saturates_above_the_ceiling_without_converting(raw: str, parsed: int) -> None:
    assert parse_int(raw, ceiling=100) == parsed


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("limit=99999&skip=-3", (500, 0)),
        ("limit=0&skip=abc", (100, 0)),
        ("limit=1.9&skip=2e3", (1, 2)),
        ("", (100, 0)),
        ("skip=999999", (100, 100000)),
        ("limit=5&limit=9", (5, 0)),
        ("limit=" + "9" * 4301 + "&skip=" + "9" * 4301, (500, 100000)),
        ("limit=-" + "9" * 4301 + "&skip=-" + "9" * 4301, (100, 0)),
    ],
)
def test_pagination_defaults_and_caps(query: str, expected: tuple[int, int]) -> None:
    assert pagination(_request(query=query), 100, 500, 100000) == expected


def test_json_body_must_be_object_or_array() -> None:
    with pytest.raises(errors.BadRequest):
        parse_body(_request("application/json"), b'"text"')


def test_deeply_nested_json_is_a_bad_request() -> None:
    with pytest.raises(errors.BadRequest):
        parse_body(_request("application/json"), b"[" * 10_000 + b"]" * 10_000)


def test_empty_json_body_is_an_empty_object() -> None:
    request = _request("application/json")
    parse_body(request, b"")
    assert request.body == {}


def test_latin1_charset_is_unsupported() -> None:
    with pytest.raises(errors.UnsupportedMediaType) as refused:
        parse_body(_request("application/json; charset=latin1"), b"{}")
    assert refused.value.message == 'unsupported charset "LATIN1"'


def _nested(levels: int) -> bytes:
    """An object body nesting ``levels`` levels (arrays under the top-level object)."""
    return b'{"a":' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


def test_a_body_at_the_document_depth_limit_is_parsed() -> None:
    request = _request("application/json")
    parse_body(request, _nested(MAX_DOCUMENT_DEPTH))
    assert request.body_kind == "json"


def test_a_body_one_level_deeper_than_the_limit_is_a_bad_request() -> None:
    with pytest.raises(errors.BadRequest) as refused:
        parse_body(_request("application/json"), _nested(MAX_DOCUMENT_DEPTH + 1))
    assert refused.value.message == TOO_DEEP


def test_in_an_array_body_each_element_is_a_document() -> None:
    at_limit = _nested(MAX_DOCUMENT_DEPTH)
    parse_body(_request("application/json"), b"[" + at_limit + b"," + at_limit + b"]")
    with pytest.raises(errors.BadRequest):
        parse_body(
            _request("application/json"), b"[" + at_limit + b"," + _nested(MAX_DOCUMENT_DEPTH + 1) + b"]"
        )


def test_brackets_inside_strings_do_not_count_as_levels() -> None:
    request = _request("application/json")
    parse_body(request, b'{"a": "' + b"[{" * 1000 + b'"}')
    assert request.body == {"a": "[{" * 1000}

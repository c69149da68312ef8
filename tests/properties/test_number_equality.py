"""The stamp's number token agrees with PostgreSQL's own jsonb equality, asked of the database itself.

Numbers are generated as JSON *text* in every spelling a client may send (integers of every size,
beyond 2**53, 2**63 and 2**64; decimals with and without exponents, trailing zeros, ``.0``, ``-0``;
families of spellings of one decimal; doubles written out in full). Each goes through what the server
does with it: parsed by orjson, then sent to PostgreSQL as orjson's text (documents) or ``json``'s
(query values). PostgreSQL then says which pairs are equal, and the tokens must say exactly the same.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from itertools import chain
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerum_server.cache.stamps import number_token
from rerum_server.store.documents import encode
from tests.support.database import DatabaseServer

SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}

_EDGES = [2**53, 2**63, 2**64, 10**16, 10**19, 2**60]
edge_integers = st.one_of(
    st.tuples(st.sampled_from(_EDGES), st.integers(-3, 3), st.sampled_from([1, -1])).map(
        lambda t: (t[0] + t[1]) * t[2]
    ),
    st.integers(-(2**70), 2**70),
)


@st.composite
def decimal_spellings(draw: st.DrawFn) -> list[str]:
    """Several spellings of one decimal, ``digits`` × 10**``exponent``: zeros appended to the digits,
    the point moved, ``.0`` added, the exponent adjusted to match."""
    digits = draw(st.integers(0, 10**20))
    exponent = draw(st.integers(-30, 30))
    sign = draw(st.sampled_from(["", "-"]))
    spellings = []
    for zeros in draw(st.lists(st.integers(0, 3), min_size=1, max_size=4)):
        mantissa = str(digits * 10**zeros)  # the value is mantissa × 10**(exponent - zeros)
        point = draw(st.integers(1, len(mantissa)))  # digits before the point
        fraction = len(mantissa) - point
        power = exponent - zeros + fraction
        tail = "." + mantissa[point:] if fraction else draw(st.sampled_from(["", ".0"]))
        spellings.append(sign + mantissa[:point] + tail + (f"e{power}" if power else ""))
    return spellings


def _integer_spellings(value: int) -> list[str]:
    return [str(value), f"{value}.0", f"{value}e0"]


def _double_spellings(value: float) -> list[str]:
    """The shortest spelling, the exact binary value written out, and two rounded ones."""
    return [repr(value), str(Decimal(value)), f"{value:.17e}", f"{value:.25g}"]


families = st.one_of(
    edge_integers.map(_integer_spellings),
    st.floats(allow_nan=False, allow_infinity=False).map(_double_spellings),
    decimal_spellings(),
)
number_lists = st.lists(families, min_size=1, max_size=12).map(
    lambda groups: list(chain.from_iterable(groups))
)


class Equality:
    """One connection to a scratch database, asking PostgreSQL which jsonb values are equal."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.connection: asyncpg.Connection = self.loop.run_until_complete(asyncpg.connect(dsn))

    def equal_pairs(self, left: list[str], right: list[str]) -> set[tuple[int, int]]:
        rows = self.loop.run_until_complete(
            self.connection.fetch(
                "SELECT a.i, b.j FROM unnest($1::text[]) WITH ORDINALITY a(t, i), "
                "unnest($2::text[]) WITH ORDINALITY b(u, j) WHERE a.t::jsonb = b.u::jsonb",
                left,
                right,
            )
        )
        return {(row["i"] - 1, row["j"] - 1) for row in rows}

    def close(self) -> None:
        self.loop.run_until_complete(self.connection.close())
        self.loop.close()


@pytest.fixture(scope="module")
def postgres(test_database: DatabaseServer) -> Iterator[Equality]:
    equality = Equality(test_database.new_database())
    yield equality
    equality.close()


def _parsed(texts: list[str]) -> list[int | float]:
    """What the server's body parser makes of each text (texts it refuses, e.g. 1e400, are dropped)."""
    values = []
    for text in texts:
        try:
            values.append(orjson.loads(text))
        except orjson.JSONDecodeError:
            continue
    return values


@settings(max_examples=300, **SETTINGS)
@given(number_lists)
def test_number_tokens_are_equal_exactly_when_postgresql_holds_the_numbers_equal(
    postgres: Equality, texts: list[str]
) -> None:
    values = _parsed(texts)
    as_documents = [encode(value) for value in values]  # what a stored document carries
    as_query_values = [json.dumps(value) for value in values]  # what a compiled query binds
    equal = postgres.equal_pairs(as_documents, as_query_values)
    tokens = [number_token(value) for value in values]
    for i, left in enumerate(tokens):
        for j, right in enumerate(tokens):
            assert ((i, j) in equal) == (left == right), (texts, values[i], values[j], left, right)


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_documents_and_queries_send_the_same_decimal_for_every_double(value: float) -> None:
    assert Decimal(orjson.dumps(value).decode()) == Decimal(json.dumps(value)) == Decimal(repr(value))


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("1.152921504606847e+18", "1152921504606847000"),
        ("1152921504606846976.0", "1152921504606847000"),
        ("1e19", "10000000000000000000"),
        ("5", "5.0"),
        ("-0.0", "0"),
        ("1e16", "10000000000000000"),
    ],
)
def test_the_reproductions_of_issue_9_share_a_token(postgres: Equality, left: str, right: str) -> None:
    values = _parsed([left, right])
    assert postgres.equal_pairs([encode(values[0])], [json.dumps(values[1])]) == {(0, 0)}
    assert number_token(values[0]) == number_token(values[1])


def test_numbers_postgresql_holds_different_get_different_tokens(postgres: Equality) -> None:
    texts = ["123456789012345678", "123456789012345678.0", "9007199254740993", "9007199254740993.0"]
    values = _parsed(texts)
    assert postgres.equal_pairs([encode(values[0])], [json.dumps(values[1])]) == set()
    assert number_token(values[0]) != number_token(values[1])
    assert number_token(values[2]) != number_token(values[3])

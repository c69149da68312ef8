"""JSON documents and MongoDB filters over the value space as PostgreSQL compares it, spelled as a client
may send them: the generators of the stamp property test and of the cache differential test.

Everything is drawn from a ``random.Random`` (hypothesis hands one to property tests with
``st.randoms()``, so its examples still shrink; the differential test seeds its own). Values are
trees whose leaves are ``Literal`` JSON texts, so one number can be written ``5``, ``5.0``, ``50e-1``
or ``0.5E1`` and one string with or without ``\\u`` escapes: the server sees the parsed value, and
PostgreSQL sees the server's re-encoding of it. ``dumps`` writes a tree as the client's text.

The vocabulary is small on purpose, so that filters and documents meet: families of numbers that
PostgreSQL may or may not hold equal (around 2**53, 2**60, 2**63, 2**64, 10**16, 10**19, -0, 0.1),
strings that differ only in Unicode normalisation, escapes or length around the stamps' cap, and keys
that are empty, contain dots, start with ``$``, are digits only or are not ASCII.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import orjson

NUMBER_FAMILIES: list[list[str]] = [
    ["0", "-0", "0.0", "-0.0", "0e0", "0E-5"],
    ["5", "5.0", "5e0", "0.5e1", "50E-1", "5.000"],
    ["-7", "-7.0", "-7e0", "-0.7e1"],
    ["2.5", "2.50", "25e-1"],
    ["0.1", "1e-1", "0.10", "0.1000000000000000055511151231257827"],
    ["1e-7", "0.0000001", "1E-07"],
    ["1e16", "10000000000000000", "1.0e16", "10000000000000001"],
    [
        "9007199254740992",
        "9007199254740992.0",
        "9007199254740993",
        "9007199254740993.0",
        "9.007199254740993e15",
    ],
    ["123456789012345678", "123456789012345678.0", "1.2345678901234568e17"],
    [
        "1152921504606846976",
        "1152921504606846976.0",
        "1.152921504606847e+18",
        "1152921504606847000",
        "1.152921504606846976e18",
    ],
    ["9223372036854775807", "9223372036854775808", "9.223372036854775807e18", "9223372036854775807.0"],
    ["-9223372036854775808", "-9223372036854775809", "-9.223372036854776e18"],
    ["18446744073709551615", "18446744073709551616", "1.8446744073709552e19"],
    ["10000000000000000000", "1e19", "1E+19", "10000000000000000000.0", "9999999999999999999"],
    ["1e300", "1.0e300", "1" + "0" * 300],
]
STRINGS: list[list[str]] = [
    ['""'],
    ['"x"', '"\\u0078"'],
    ['"X"'],
    ['"\u00e9"', '"\\u00e9"', '"\\u00E9"'],
    ['"e\u0301"', '"e\\u0301"'],  # the same letter, decomposed: PostgreSQL compares code points
    ['"5"', '"5.0"'],
    ['"a.b"'],
    ['"$x"'],
    ['"true"', '"null"'],
    ['"alpha beta"', '"beta gamma"', '"Alpha"'],
    ['"\U0001f600"', '"\\ud83d\\ude00"'],
    ['"' + "y" * 512 + '"', '"' + "y" * 513 + '"', '"' + "y" * 2000 + '"'],
]
OTHER_SCALARS = ["true", "false", "null"]
# Keys of documents; filters address them by dotted paths, so "a.b" is a key no path can name. Plain
# keys come twice, so that most paths are plain and documents and filters meet often.
DOCUMENT_KEYS = ["a", "b", "k", "a", "b", "k", "", "0", "1", "a.b", "$x", "\u00e9", "e\u0301"]
PATH_SEGMENTS = ["a", "b", "k", "a", "b", "k", "", "0", "1", "$x", "\u00e9", "e\u0301"]
WORDS = ["alpha", "beta", "gamma", "Alpha"]


@dataclass(frozen=True)
class Literal:
    """A JSON scalar written exactly as ``text``."""

    text: str


def dumps(value: Any) -> str:
    """The JSON text of a tree of dicts, lists, plain JSON values and ``Literal``s."""
    if isinstance(value, Literal):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dumps(item) for item in value) + "]"
    return json.dumps(value)


def parsed(value: Any) -> Any:
    """What the server's body parser (orjson) makes of the tree's text."""
    return orjson.loads(dumps(value))


class Space:
    """The generators, over one random source."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def respell(self, literal: Literal) -> Literal:
        """Another spelling from ``literal``'s family (the same text when it has none)."""
        for family in (*NUMBER_FAMILIES, *STRINGS):
            if literal.text in family:
                return Literal(self.rng.choice(family))
        return literal

    def number(self) -> Literal:
        if self.rng.random() < 0.15:
            return Literal(self._fresh_number())
        return Literal(self.rng.choice(self.rng.choice(NUMBER_FAMILIES)))

    def _fresh_number(self) -> str:
        rng = self.rng
        choice = rng.randrange(3)
        if choice == 0:
            return str(rng.choice([1, -1]) * (rng.choice([2**53, 2**63, 2**64, 10**19]) + rng.randint(-2, 2)))
        if choice == 1:
            return repr(rng.uniform(-1e6, 1e6))
        return f"{rng.randint(0, 999)}e{rng.randint(-20, 20)}"

    def string(self) -> Literal:
        return Literal(self.rng.choice(self.rng.choice(STRINGS)))

    def scalar(self) -> Literal:
        roll = self.rng.random()
        if roll < 0.45:
            return self.number()
        if roll < 0.9:
            return self.string()
        return Literal(self.rng.choice(OTHER_SCALARS))

    def value(self, depth: int) -> Any:
        roll = self.rng.random()
        if depth <= 0 or roll < 0.6:
            return self.scalar()
        if roll < 0.8:
            return [self.value(depth - 1) for _ in range(self.rng.randint(0, 3))]
        return self.document(depth - 1, max_keys=3)

    def document(self, depth: int = 5, max_keys: int = 4) -> dict[str, Any]:
        keys = self.rng.sample(DOCUMENT_KEYS, self.rng.randint(0, max_keys))
        return {key: self.value(depth) for key in keys}

    def path(self) -> str:
        return ".".join(
            self.rng.choice(PATH_SEGMENTS) for _ in range(self.rng.choice([1, 1, 1, 2, 2, 3, 4, 5]))
        )

    def condition(self) -> Any:
        rng = self.rng
        kind = rng.randrange(16)
        if kind <= 4:
            return self.scalar()
        if kind == 5:
            return {"$eq": self.scalar()}
        if kind == 6:
            return {"$in": [self.scalar() for _ in range(rng.randint(1, 3))]}
        if kind == 7:
            return {"$ne": self.scalar()}
        if kind == 8:
            return {"$nin": [self.scalar() for _ in range(rng.randint(0, 2))]}
        if kind == 9:
            return {rng.choice(["$gt", "$gte", "$lt", "$lte"]): self.number()}
        if kind == 10:
            return {"$exists": rng.choice([True, False])}
        if kind == 11:
            return {"$size": rng.randint(0, 2)}
        if kind == 12:
            return {"$all": [self.scalar() for _ in range(rng.randint(1, 2))]}
        if kind == 13:
            return {
                "$elemMatch": rng.choice([{"$eq": self.scalar()}, {rng.choice(PATH_SEGMENTS): self.scalar()}])
            }
        if kind == 14:
            return {"$not": {"$eq": self.scalar()}}
        # whole-value equality with an array or an object (whose first key is not an operator)
        return (
            [self.scalar() for _ in range(rng.randint(0, 2))] if rng.random() < 0.5 else self.document(1, 2)
        )

    def filter_about(self, trees: list[Any]) -> dict[str, Any]:
        """A filter that names leaves of ``trees`` (by their paths, their values spelled another way),
        so that it is likely to select, or to stop selecting, the documents they belong to."""
        found = [leaf for tree in trees for leaf in _leaves(tree, ()) if not leaf[0][0].startswith("$")]
        if not found:
            return self.filter()
        fields = [self._field_about(*self.rng.choice(found)) for _ in range(self.rng.choice([1, 1, 1, 2]))]
        return {"$or": fields} if len(fields) > 1 else fields[0]

    def _field_about(self, path: tuple[str, ...], literal: Literal) -> dict[str, Any]:
        value = self.respell(literal)
        choices = [value, value, value, {"$eq": value}, {"$in": [value, self.scalar()]}, {"$ne": value}]
        return {".".join(path): self.rng.choice([*choices, {"$all": [value]}])}

    def filter(self, depth: int = 2) -> dict[str, Any]:
        rng = self.rng
        if depth > 0 and rng.random() < 0.25:
            operator = rng.choice(["$or", "$or", "$and", "$nor"])
            return {operator: [self.filter(depth - 1) for _ in range(rng.randint(1, 3))]}
        fields: dict[str, Any] = {}
        for _ in range(rng.choice([1, 1, 1, 2])):
            path = self.path()
            if not path.startswith("$"):
                fields[path] = self.condition()
        return fields or {"a": self.scalar()}


def _leaves(tree: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Literal]]:
    """(object path, literal) of every leaf a dotted path can name (no dots in its keys)."""
    if isinstance(tree, Literal):
        return [(path, tree)] if path else []
    if isinstance(tree, list):
        return [leaf for item in tree for leaf in _leaves(item, path)]
    if isinstance(tree, dict):
        return [leaf for key, item in tree.items() if "." not in key for leaf in _leaves(item, (*path, key))]
    return []

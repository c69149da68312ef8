"""Filter tree → one parameterised SQL boolean expression over the jsonb column ``doc``.

The exact MongoDB semantics are one SQL/JSON path predicate, evaluated by ``jsonb_path_exists(doc, $p, $v)``
in *lax* mode. Lax mode is used deliberately: its member accessor ``."k"`` applied to an array looks into the
array's elements one level deep, and a filter ``x ? (...)`` applied to an array tests the elements one level
deep — which is exactly MongoDB's implicit array traversal and its "array field contains the value" rule.
Where MongoDB does *not* look into an array (``$size``, whole-array equality, values reached through an
array index), the predicate names the value by a path from its parent instead of binding it in a filter,
and guards every comparison with a ``.type()`` test so that lax unwrapping never applies and no comparison is
ever *unknown*: every sub-predicate is two-valued, so ``!`` (``$ne``, ``$not``, ``$nor``) is a true negation.

Equalities that an index can serve also get a necessary condition ``doc @@ $k::jsonpath`` (one predicate of
literal equalities for the whole filter), so a ``USING gin (doc jsonb_path_ops)`` index narrows the rows
before the exact predicate runs. The size of the exact predicate is bounded (``MAX_QUERY_TESTS``): it is
evaluated on every row the index cannot rule out.

No user data is ever part of the SQL text: field names and regex patterns go into the jsonpath text through
``jsonpath_string`` (the one escaping function), values go into the jsonpath variables, and the jsonpath text,
the variables and the index condition are bound as parameters.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rerum_server.errors import BadRequest
from rerum_server.query.parse import (
    All,
    AllOf,
    And,
    Compare,
    Cond,
    ElemMatchDocument,
    ElemMatchValue,
    Eq,
    Exists,
    Field,
    Filter,
    In,
    Nor,
    Not,
    Or,
    Regex,
    Size,
    TypeIs,
    is_array_index,
)

MAX_VALUE_TERMS = 16  # scalars of one equality's value in the index-served condition (see _value_terms)
# The database evaluates the predicates on every document it cannot rule out by the index, so their size
# multiplies the cost of a scan: measured on 100,000 documents (bench/query_cost.py, docs/query.md), a scan
# costs ~15 µs per document plus ~0.2 µs per test; an item of a list variable, or a term of the index-served
# condition, costs about a quarter of a test.
MAX_QUERY_TESTS = 256
_LIST_ITEMS_PER_TEST = 4
# A regex match costs ~3 µs per document. The limit also keeps the distinct patterns of a query well below
# the 32 compiled regexes a PostgreSQL backend caches: beyond them every pattern is compiled again on every
# document (measured: 30 patterns 8.6 s, 34 patterns 39 s on 100,000 documents).
_REGEX_TESTS = 16
_REGEX_CHARACTERS_PER_TEST = 64
TOO_COMPLEX = (
    "Invalid query: it needs {tests} tests per document, more than the limit of {limit} "
    "(each condition, operator, path step and compared value counts). Split it into smaller queries."
)


@dataclass(frozen=True)
class SqlFilter:
    """A boolean SQL expression over the column ``doc`` with placeholders ``$first .. $first+len(params)-1``.

    Every parameter is a ``str``; the SQL text casts each placeholder to its type (``::jsonb`` for
    jsonpath variables, ``::jsonpath`` for the paths), so asyncpg binds them as text; there are at most three.
    ``sql`` is parenthesised and may be AND-ed into any ``WHERE`` clause; it is ``TRUE``/``FALSE`` (with no
    parameters) when the filter matches everything/nothing.
    """

    sql: str
    params: tuple[str, ...]


def compile_filter(f: Filter, first_param: int = 1) -> SqlFilter:
    """Compile a filter tree (from ``parse_filter``) into SQL whose placeholders start at ``$first_param``.

    Raises ``BadRequest`` for a filter needing more than ``MAX_QUERY_TESTS`` tests per document.
    """
    builder = _PredicateBuilder()
    predicate = builder.filter(f, "@", as_array=False)
    if predicate is TRUE or predicate is FALSE:
        return SqlFilter("TRUE" if predicate is TRUE else "FALSE", ())
    params: list[str] = []

    def placeholder(value: str, cast: str) -> str:
        params.append(value)
        return f"${first_param + len(params) - 1}::{cast}"

    pieces = []
    necessary = _necessary(f)
    if necessary is FALSE:
        return SqlFilter("FALSE", ())
    # The index-served condition is rechecked on each candidate, but its terms are bare comparisons.
    tests = query_tests(predicate, builder.variables) + -(-query_tests(necessary, {}) // _LIST_ITEMS_PER_TEST)
    if tests > MAX_QUERY_TESTS:
        raise BadRequest(TOO_COMPLEX.format(tests=tests, limit=MAX_QUERY_TESTS))
    if necessary is not TRUE:
        pieces.append(f"doc @@ {placeholder(necessary.render(), 'jsonpath')}")
    path = placeholder(f"lax $ ? ({predicate.render()})", "jsonpath")
    variables = placeholder(json.dumps(builder.variables, ensure_ascii=False, allow_nan=False), "jsonb")
    pieces.append(f"jsonb_path_exists(doc, {path}, {variables})")
    return SqlFilter("(" + " AND ".join(pieces) + ")", tuple(params))


def query_tests(predicate: Predicate, variables: dict[str, Any]) -> int:
    """The work of evaluating ``predicate`` on one document, in tests: each atom and ``exists`` one, a regex
    ``_REGEX_TESTS`` and one per ``_REGEX_CHARACTERS_PER_TEST`` characters of its text, a list variable one
    per ``_LIST_ITEMS_PER_TEST`` items."""
    tests = sum(
        -(-len(value) // _LIST_ITEMS_PER_TEST) for value in variables.values() if isinstance(value, list)
    )
    pending = [predicate]
    while pending:
        item = pending.pop()
        if isinstance(item, Atom):
            regex = " like_regex " in item.text
            tests += _REGEX_TESTS + len(item.text) // _REGEX_CHARACTERS_PER_TEST if regex else 1
        elif isinstance(item, ExistsIn):
            tests += 1
            pending.extend([] if item.condition is None else [item.condition])
        elif isinstance(item, _Junction):
            pending.extend(item.items)
        elif isinstance(item, _Negation):
            pending.append(item.item)
    return tests


def jsonpath_string(text: str) -> str:
    """``text`` as a jsonpath string literal: the only way user strings enter jsonpath text.

    Quotes and backslashes are escaped; everything outside printable ASCII is written as a ``\\u`` escape,
    so the literal is plain ASCII whatever the key or pattern holds. U+0000 and lone surrogates cannot be
    represented (and cannot occur in stored documents): they raise ``ValueError``.
    """
    out = ['"']
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif 0x20 <= code <= 0x7E:
            out.append(char)
        elif code == 0 or 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"U+{code:04X} cannot be written in a jsonpath string")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\u{{{code:x}}}")
    out.append('"')
    return "".join(out)


# ---------------------------------------------------------------------------------------------------------
# Predicates: a tiny algebra with constant folding, rendered with balanced nesting (a long $in or $and must
# not become a deeply nested chain: the database evaluates jsonpath recursively).


class Predicate:
    """A jsonpath predicate."""

    def render(self) -> str:
        raise NotImplementedError


class _Constant(Predicate):
    def __init__(self, value: bool) -> None:
        self.value = value

    def render(self) -> str:
        # jsonpath has no boolean predicate literal; only reached inside larger expressions after folding
        # failed to remove it, which the constructors below prevent.
        raise AssertionError("constants are folded away")


TRUE = _Constant(True)
FALSE = _Constant(False)


class Atom(Predicate):
    """A predicate written out directly, e.g. ``@."a".type() == "array"``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def render(self) -> str:
        return self.text


class ExistsIn(Predicate):
    """``exists(path ? (condition))``: some item of ``path`` (arrays unwrapped one level) satisfies it."""

    def __init__(self, path: str, condition: Predicate | None) -> None:
        self.path = path
        self.condition = condition

    def render(self) -> str:
        if self.condition is None:
            return f"exists({self.path})"
        return f"exists({self.path} ? ({self.condition.render()}))"


class _Junction(Predicate):
    def __init__(self, operator: str, items: Sequence[Predicate]) -> None:
        self.operator = operator
        self.items = items

    def render(self) -> str:
        return _balanced(self.items, self.operator)


class _Negation(Predicate):
    def __init__(self, item: Predicate) -> None:
        self.item = item

    def render(self) -> str:
        return f"!({self.item.render()})"


def _balanced(items: Sequence[Predicate], operator: str) -> str:
    if len(items) == 1:
        return items[0].render()
    middle = len(items) // 2
    return f"({_balanced(items[:middle], operator)} {operator} {_balanced(items[middle:], operator)})"


def p_and(*items: Predicate) -> Predicate:
    """Conjunction, folding constants (order is kept: type guards come first and short-circuit)."""
    kept: list[Predicate] = []
    for item in items:
        if item is FALSE:
            return FALSE
        if item is not TRUE:
            kept.extend(item.items if isinstance(item, _Junction) and item.operator == "&&" else [item])
    return TRUE if not kept else kept[0] if len(kept) == 1 else _Junction("&&", kept)


def p_or(*items: Predicate) -> Predicate:
    """Disjunction, folding constants."""
    kept: list[Predicate] = []
    for item in items:
        if item is TRUE:
            return TRUE
        if item is not FALSE:
            kept.extend(item.items if isinstance(item, _Junction) and item.operator == "||" else [item])
    return FALSE if not kept else kept[0] if len(kept) == 1 else _Junction("||", kept)


def p_not(item: Predicate) -> Predicate:
    """Negation, folding constants and double negations."""
    if item is TRUE:
        return FALSE
    if item is FALSE:
        return TRUE
    if isinstance(item, _Negation):
        return item.item
    return _Negation(item)


def exists_in(path: str, condition: Predicate | None = None) -> Predicate:
    """``exists(path ? (condition))``, folded when the condition is constant; without a condition, whether
    ``path`` yields anything at all (an empty array then counts, as it does not with a condition)."""
    if condition is FALSE:
        return FALSE
    if condition is TRUE:
        # Some item once arrays are unwrapped one level: lax [*] yields an array's elements, or the value.
        return ExistsIn(f"{path}[*]", None)
    return ExistsIn(path, condition)


def has_type(value: str, json_type: str) -> Predicate:
    """``value.type() == "<json_type>"`` — ``.type()`` never unwraps arrays, even in lax mode."""
    return Atom(f'{value}.type() == "{json_type}"')


# A leaf condition: given the path expression of one reached value and whether MongoDB would also look into
# it if it is an array ("expandable": not when the value was reached through an array index), a predicate.
Leaf = Callable[[str, bool], Predicate]

_JSON_TYPE = {str: "string", bool: "boolean", int: "number", float: "number"}
_COMPARISON = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def _scalar_type(value: Any) -> str:
    return _JSON_TYPE[type(value)]


class _PredicateBuilder:
    """Builds the predicate of a filter tree, collecting the values it compares with as jsonpath variables."""

    def __init__(self) -> None:
        self.variables: dict[str, Any] = {}

    def variable(self, value: Any) -> str:
        name = f"v{len(self.variables)}"
        self.variables[name] = value
        return "$" + name

    # --- filters ---------------------------------------------------------------------------------------

    def filter(self, f: Filter, root: str, as_array: bool) -> Predicate:
        """The predicate of ``f`` for the document at ``root`` (an array is read as a document with keys
        "0", "1", ...: how MongoDB's ``$elemMatch`` sees array elements)."""
        if isinstance(f, Field):
            return self.field(f.path, f.cond, root, as_array)
        parts = [self.filter(child, root, as_array) for child in f.filters]
        if isinstance(f, And):
            return p_and(*parts)
        if isinstance(f, Or):
            return p_or(*parts)
        assert isinstance(f, Nor)
        return p_not(p_or(*parts))

    def field(self, path: tuple[str, ...], cond: Cond, root: str, as_array: bool) -> Predicate:
        """MongoDB's reading of ``{path: cond}``: negations and conjunctions apply to the whole path."""
        if isinstance(cond, Not):
            return p_not(self.field(path, cond.cond, root, as_array))
        if isinstance(cond, AllOf):
            return p_and(*(self.field(path, item, root, as_array) for item in cond.conds))
        if isinstance(cond, All):
            if not cond.items:
                return FALSE
            return p_and(*(self.field(path, item, root, as_array) for item in cond.items))
        if isinstance(cond, In):
            return self.field_in(path, cond.values, root, as_array)
        if isinstance(cond, Eq | Compare) and cond.value is None:
            if isinstance(cond, Compare) and cond.op in ("$gt", "$lt"):
                return FALSE
            # null matches null, arrays holding null, and paths that reach nothing.
            return self.reach(
                path, root, as_array, lambda x, expand: self.expand(x, expand, self.is_null), True
            )
        if isinstance(cond, Exists):
            present = self.reach(path, root, as_array, lambda x, _expand: exists_in(x), False)
            return present if cond.present else p_not(present)
        return self.reach(path, root, as_array, self.leaf(cond), False)

    def field_in(
        self, path: tuple[str, ...], values: tuple[Any, ...], root: str, as_array: bool
    ) -> Predicate:
        others = [value for value in values if value is not None]
        parts = []
        if len(others) < len(values):
            parts.append(self.field(path, Eq(None), root, as_array))
        if others:
            whole = any(isinstance(value, list) for value in others)

            def leaf(x: str, expand: bool) -> Predicate:
                member = self.expand(x, expand, lambda v: self.is_member(v, others))
                return p_or(self.is_member(x, others), member) if whole and expand else member

            parts.append(self.reach(path, root, as_array, leaf, False))
        return p_or(*parts)

    # --- walking a path --------------------------------------------------------------------------------

    def reach(self, path: tuple[str, ...], root: str, as_array: bool, leaf: Leaf, missing: bool) -> Predicate:
        """Whether some value reached by ``path`` from ``root`` satisfies ``leaf``; with ``missing``, a path
        that reaches nothing along some branch also satisfies it (MongoDB's null matching missing fields)."""
        if as_array:
            return self.from_array_document(root, path, leaf, missing)
        return self.from_object(root, path, leaf, missing)

    def from_object(self, obj: str, path: tuple[str, ...], leaf: Leaf, missing: bool) -> Predicate:
        value = f"{obj}.{jsonpath_string(path[0])}"
        found = self.after_key(value, path[1:], leaf, missing)
        return p_or(p_not(exists_in(value)), found) if missing else found

    def from_array_document(self, array: str, path: tuple[str, ...], leaf: Leaf, missing: bool) -> Predicate:
        if not is_array_index(path[0]):
            return TRUE if missing else FALSE
        value = f"{array}[{int(path[0])}]"
        found = self.after_key(value, path[1:], leaf, missing)
        return p_or(p_not(exists_in(value)), found) if missing else found

    def after_key(self, value: str, rest: tuple[str, ...], leaf: Leaf, missing: bool) -> Predicate:
        if not rest:
            return leaf(value, True)
        return self.step(value, rest, leaf, missing)

    def step(self, value: str, rest: tuple[str, ...], leaf: Leaf, missing: bool) -> Predicate:
        """Continue ``rest`` from the single value ``value`` (an expression yielding at most one item)."""
        # An object, or the object elements of an array (one level): the lax filter does exactly that.
        through = exists_in(value, p_and(has_type("@", "object"), self.from_object("@", rest, leaf, missing)))
        branches = [through]
        if is_array_index(rest[0]):
            # ... and, for a numeric component, the array element at that position, which MongoDB then does
            # not look into at the end of the path. The type guard matters: lax [0] of a non-array is itself.
            element = f"{value}[{int(rest[0])}]"
            at_index = leaf(element, False) if len(rest) == 1 else self.step(element, rest[1:], leaf, missing)
            branches.append(p_and(has_type(value, "array"), at_index))
        if missing:
            # A string, number, boolean or null with path left over: the field is missing on this branch.
            branches.append(p_and(Atom(f'{value}.type() != "object"'), Atom(f'{value}.type() != "array"')))
        return p_or(*branches)

    # --- leaves ----------------------------------------------------------------------------------------

    @staticmethod
    def expand(x: str, expand: bool, test: Callable[[str], Predicate]) -> Predicate:
        """``test`` on the value, or — when MongoDB looks into arrays here — on the value if it is not an
        array and on each element if it is (the lax filter unwraps exactly one level)."""
        return exists_in(x, test("@")) if expand else test(x)

    def leaf(self, cond: Cond) -> Leaf:
        """The leaf test of a condition on one reached value."""
        if isinstance(cond, Eq):
            if isinstance(cond.value, list):
                # An array value is compared as a whole, and (where MongoDB looks into arrays) with each
                # element of an array: the filter below binds elements, never the array itself.
                return lambda x, expand: p_or(
                    self.equals(x, cond.value),
                    self.expand(x, True, lambda v: self.equals(v, cond.value)) if expand else FALSE,
                )
            return lambda x, expand: self.expand(x, expand, lambda v: self.equals(v, cond.value))
        if isinstance(cond, Compare | Regex) or (isinstance(cond, TypeIs) and "array" not in cond.types):
            return lambda x, expand: self.expand(x, expand, lambda v: self.single(cond, v))
        if isinstance(cond, TypeIs):
            others = TypeIs(tuple(t for t in cond.types if t != "array"))
            return lambda x, expand: p_or(
                has_type(x, "array"), self.expand(x, expand, lambda v: self.single(others, v))
            )
        # $size and $elemMatch look at the value itself, never into it.
        return lambda x, _expand: self.single(cond, x)

    def single(self, cond: Cond, v: str) -> Predicate:
        """``cond`` on the single value ``v`` with no array traversal: how ``$elemMatch`` operators see each
        element, and the building block of the leaves above."""
        if isinstance(cond, Eq):
            return self.equals(v, cond.value)
        if isinstance(cond, Compare):
            if cond.value is None:
                return FALSE if cond.op in ("$gt", "$lt") else self.is_null(v)
            comparison = Atom(f"{v} {_COMPARISON[cond.op]} {self.variable(cond.value)}")
            return p_and(has_type(v, _scalar_type(cond.value)), comparison)
        if isinstance(cond, In):
            return self.is_member(v, cond.values)
        if isinstance(cond, Exists):
            return TRUE if cond.present else FALSE
        if isinstance(cond, Size):
            return p_and(has_type(v, "array"), Atom(f"{v}.size() == {self.variable(cond.length)}"))
        if isinstance(cond, TypeIs):
            return p_or(*(self.is_type(v, name) for name in cond.types))
        if isinstance(cond, Regex):
            flags = "si" if cond.ignore_case else "s"  # s: we translate '.' ourselves (see parse.py)
            match = Atom(f'{v} like_regex {jsonpath_string(cond.translated)} flag "{flags}"')
            return p_and(has_type(v, "string"), match)
        if isinstance(cond, ElemMatchValue):
            return p_and(has_type(v, "array"), exists_in(v, self.single(cond.cond, "@")))
        if isinstance(cond, ElemMatchDocument):
            return p_and(has_type(v, "array"), exists_in(v, self.element_document(cond.filter)))
        if isinstance(cond, All):
            return p_and(*(self.single(item, v) for item in cond.items)) if cond.items else FALSE
        if isinstance(cond, Not):
            return p_not(self.single(cond.cond, v))
        assert isinstance(cond, AllOf)
        return p_and(*(self.single(item, v) for item in cond.conds))

    def element_document(self, f: Filter) -> Predicate:
        """``f`` on the element ``@``: objects as documents, arrays as documents keyed "0", "1", ...; other
        elements never match (MongoDB's ``$elemMatch`` with fields)."""
        return p_or(
            p_and(has_type("@", "object"), self.filter(f, "@", as_array=False)),
            p_and(has_type("@", "array"), self.filter(f, "@", as_array=True)),
        )

    # --- values ----------------------------------------------------------------------------------------

    @staticmethod
    def is_null(v: str) -> Predicate:
        return has_type(v, "null")

    def equals(self, v: str, value: Any) -> Predicate:
        """``v`` is exactly ``value``: same JSON type and, recursively, same members (object key order is
        not compared: jsonb does not keep it)."""
        if value is None:
            return self.is_null(v)
        if isinstance(value, list):
            items = [self.equals(f"{v}[{index}]", item) for index, item in enumerate(value)]
            return p_and(has_type(v, "array"), Atom(f"{v}.size() == {len(value)}"), *items)
        if isinstance(value, dict):
            if value:
                others = p_and(*(Atom(f"@.key != {jsonpath_string(key)}") for key in value))
                no_other_keys = p_not(exists_in(f"{v}.keyvalue()", others))
            else:
                no_other_keys = p_not(exists_in(f"{v}.keyvalue()"))
            members = [self.equals(f"{v}.{jsonpath_string(key)}", item) for key, item in value.items()]
            return p_and(has_type(v, "object"), no_other_keys, *members)
        return p_and(has_type(v, _scalar_type(value)), Atom(f"{v} == {self.variable(value)}"))

    def is_member(self, v: str, values: Iterable[Any]) -> Predicate:
        """``v`` equals one of ``values``; scalars of one type are compared in one go with an array variable
        (``@ == $v[*]`` is true when any item is equal)."""
        by_type: dict[str, list[Any]] = {}
        parts = []
        for value in values:
            if value is None or isinstance(value, list | dict):
                parts.append(self.equals(v, value))
            else:
                by_type.setdefault(_scalar_type(value), []).append(value)
        for json_type, scalars in by_type.items():
            parts.append(p_and(has_type(v, json_type), Atom(f"{v} == {self.variable(scalars)}[*]")))
        return p_or(*parts)

    def is_type(self, v: str, name: str) -> Predicate:
        """MongoDB's ``$type`` alias on a JSON value. JSON has one number type; as the reference server's
        JavaScript driver stores them, integral values in int32 range are "int", others "double"; "long"
        is an integral value beyond int32 within int64 (the Python driver's reading); "number" is any."""
        if name in ("string", "object", "array", "null"):
            return has_type(v, name)
        if name == "bool":
            return has_type(v, "boolean")
        if name == "number":
            return has_type(v, "number")
        if name not in ("int", "long", "double"):
            return FALSE  # BSON types that JSON cannot hold
        integral = Atom(f"{v} == {v}.floor()")
        in_int32 = Atom(f"{v} >= {_INT32[0]} && {v} <= {_INT32[1]}")
        in_int64 = Atom(f"{v} >= {_INT64[0]} && {v} <= {_INT64[1]}")
        if name == "int":
            return p_and(has_type(v, "number"), integral, in_int32)
        if name == "long":
            return p_and(has_type(v, "number"), integral, p_not(in_int32), in_int64)
        return p_and(has_type(v, "number"), p_not(p_and(integral, in_int64)))


# ---------------------------------------------------------------------------------------------------------
# The index-served necessary condition: one jsonpath predicate of equalities with literal values, tested with
# ``doc @@ $k::jsonpath``. ``jsonb_path_ops`` hashes each scalar with the keys above it and ignores array
# levels, and lax mode unwraps arrays one level at each accessor and in ``==``, so a single term
# ``$."a"."b" == 5`` covers every shape MongoDB's ``{"a.b": 5}`` can match (a, b objects or arrays of
# objects, 5 alone or inside an array). One expression, however many equalities it holds, is one index
# condition: the planner prices it once, where an AND of N containment ORs made it weigh combinations of
# N bitmap scans (seconds for a few hundred keys).


def _necessary(f: Filter) -> Predicate:
    """A predicate every matching document satisfies, built from the equalities that must hold
    (top-level fields, ``$and``, and ``$or`` whose branches all have one); TRUE when there is none."""
    if isinstance(f, Field):
        return _field_necessary(f.path, f.cond)
    if isinstance(f, And):
        return p_and(*map(_necessary, f.filters))
    if isinstance(f, Or):
        return p_or(*map(_necessary, f.filters))
    return TRUE


def _field_necessary(path: tuple[str, ...], cond: Cond) -> Predicate:
    if isinstance(cond, Eq):
        if cond.value is None:
            return TRUE  # null also matches missing fields
        return p_or(*(p_and(*_value_terms(accessor, cond.value)) for accessor in _accessors(path)))
    if isinstance(cond, In):
        return p_or(*(_field_necessary(path, Eq(value)) for value in cond.values))
    if isinstance(cond, All):
        return p_and(*(_field_necessary(path, item) for item in cond.items)) if cond.items else FALSE
    if isinstance(cond, AllOf):
        return p_and(*(_field_necessary(path, item) for item in cond.conds))
    return TRUE


def _accessors(path: tuple[str, ...]) -> list[str]:
    """The lax jsonpath accessors of ``path``: a numeric component after the first is a key or a position
    (at most 2 ** MAX_NUMERIC_SEGMENTS alternatives)."""
    accessors = ["$." + jsonpath_string(path[0])]
    for key in path[1:]:
        steps = [f".{jsonpath_string(key)}"] + ([f"[{int(key)}]"] if is_array_index(key) else [])
        accessors = [accessor + step for accessor in accessors for step in steps]
    return accessors


def _value_terms(accessor: str, value: Any) -> list[Predicate]:
    """Terms ``accessor... == scalar`` that hold when some item ``accessor`` yields is ``value`` or an array
    holding it (by induction: an object's members are then yielded exactly by ``.key``, which unwraps the
    array; an array's elements, or arrays holding them, by ``[*]``; ``==`` unwraps the rest). At most
    MAX_VALUE_TERMS per value: fewer terms are still a necessary condition, and each ``[*]`` term costs a
    pass over the array when rechecked."""
    terms: list[Predicate] = []
    pending: list[tuple[str, Any]] = [(accessor, value)]
    while pending and len(terms) < MAX_VALUE_TERMS:
        where, item = pending.pop(0)
        if isinstance(item, dict):
            pending.extend((f"{where}.{jsonpath_string(key)}", member) for key, member in item.items())
        elif isinstance(item, list):
            pending.extend((f"{where}[*]", element) for element in item)
        else:
            terms.append(Atom(f"{where} == {_literal(item)}"))
    return terms


def _literal(value: str | int | float | bool | None) -> str:
    # GIN serves `==` with literals only (not jsonpath variables). Strings go through the escaping function;
    # JSON writes numbers (jsonpath reads 1e+300 and 1000-digit integers), true, false and null.
    return jsonpath_string(value) if isinstance(value, str) else json.dumps(value)

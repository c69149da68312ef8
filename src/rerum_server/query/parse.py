"""MongoDB filter documents → a typed filter tree of frozen dataclasses, refusing what we do not support.

Every refusal is a ``BadRequest`` whose message names the offending operator, so a client learns exactly what
to change; nothing else ever escapes ``parse_filter`` (the fuzz test in tests/properties holds us to that).

The tree keeps MongoDB's structure: a ``Filter`` is a conjunction/disjunction of ``Field`` conditions, and a
``Field`` applies one ``Cond`` to the values a dotted path reaches. Operators that are negations in MongoDB
(``$ne``, ``$nin``, ``$not``, ``$exists: false``) become ``Not``/``Exists`` nodes so that the compiler has a
small vocabulary. Values are plain JSON values (dict/list/str/int/float/bool/None), validated here and
shared with the caller's document: treat the tree as read-only.

``$regex`` patterns are translated here (see ``_RegexTranslator``) into PostgreSQL ARE syntax, because only a
translation can prove that PostgreSQL will accept the pattern: what we cannot translate exactly is refused.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from rerum_server.errors import BadRequest

# Limits keep the generated SQL small and the database's recursion shallow; real RERUM queries are far below.
MAX_DEPTH = 48  # nesting of objects/arrays anywhere in the filter document
MAX_NODES = 20_000  # JSON nodes in the whole filter document
MAX_PATH_SEGMENTS = 32
MAX_NUMERIC_SEGMENTS = 4  # each numeric path component doubles the generated SQL (index and key readings)
MAX_REGEX_LENGTH = 4096
# PostgreSQL's regex compiler expands a counted repeat {m,n} into n copies, and its optimisation passes grow
# much faster than linearly when copies nest or can match the empty string: (a?){0,255} takes seconds to
# compile, ((x|y*){0,16}){0,16} tens of seconds. These bounds keep every accepted pattern in milliseconds.
MAX_REPEAT = 255  # PostgreSQL's regex engine refuses larger {m,n} bounds
MAX_REGEX_COPIES = 20_000  # atoms once counted repeats are expanded
MAX_NESTED_REPEAT = 256  # product of the bounds of counted repeats nested in one another
MAX_EMPTY_REPEAT = 16  # the same, for counted repeats whose body can match the empty string
MAX_OPTIONAL_ATOMS = 64  # optional parts (x?, x*, x{0,n}) once counted repeats are expanded
MAX_WORD_BOUNDARIES = 8  # \b and \B (alternations of lookarounds: each doubles the automaton)
MAX_INTEGER_DIGITS = 1000

# ---------------------------------------------------------------------------------------------------------
# The tree


@dataclass(frozen=True)
class Eq:
    """Equality with a JSON value (implicit ``{path: value}`` or ``$eq``); ``None`` also matches missing."""

    value: Any


@dataclass(frozen=True)
class Compare:
    """``$gt``/``$gte``/``$lt``/``$lte`` against a string, number, boolean or null (type-bracketed)."""

    op: str
    value: str | int | float | bool | None


@dataclass(frozen=True)
class In:
    """``$in``: equality with any of the values."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Exists:
    """``$exists``."""

    present: bool


@dataclass(frozen=True)
class Size:
    """``$size``: the value is an array of exactly this length."""

    length: int


@dataclass(frozen=True)
class TypeIs:
    """``$type``: canonical MongoDB type aliases ("string", "number", "int", ...)."""

    types: tuple[str, ...]


@dataclass(frozen=True)
class Regex:
    """``$regex`` with ``$options``; ``translated`` is the equivalent PostgreSQL ARE pattern."""

    pattern: str
    options: str
    translated: str
    ignore_case: bool


@dataclass(frozen=True)
class ElemMatchValue:
    """``$elemMatch`` with operators (``{$gt: 1}``): some array element, taken as a single value, satisfies it."""

    cond: Cond


@dataclass(frozen=True)
class ElemMatchDocument:
    """``$elemMatch`` with fields (``{b: 1}``): some object (or array-as-document) element matches the filter."""

    filter: Filter


@dataclass(frozen=True)
class All:
    """``$all``: every item (an equality or an ``$elemMatch``) holds; an empty ``$all`` matches nothing."""

    items: tuple[Eq | ElemMatchValue | ElemMatchDocument, ...]


@dataclass(frozen=True)
class Not:
    """Negation of a whole field condition (``$ne``, ``$nin``, ``$not``)."""

    cond: Cond


@dataclass(frozen=True)
class AllOf:
    """Several operators on one field (``{$gt: 1, $lt: 5}``): each holds, independently of the others."""

    conds: tuple[Cond, ...]


Cond = (
    Eq
    | Compare
    | In
    | Exists
    | Size
    | TypeIs
    | Regex
    | ElemMatchValue
    | ElemMatchDocument
    | All
    | Not
    | AllOf
)


@dataclass(frozen=True)
class Field:
    """A condition on the values reached by a dotted path (``("a", "b")`` for ``"a.b"``)."""

    path: tuple[str, ...]
    cond: Cond


@dataclass(frozen=True)
class And:
    """All of the filters (``$and``, or the fields of one filter document); empty matches everything."""

    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    """``$or``."""

    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class Nor:
    """``$nor``: none of the filters."""

    filters: tuple[Filter, ...]


Filter = Field | And | Or | Nor

# ---------------------------------------------------------------------------------------------------------
# Operators

LOGICAL_OPERATORS = frozenset({"$and", "$or", "$nor"})
COMPARISONS = frozenset({"$gt", "$gte", "$lt", "$lte"})

# MongoDB's $type aliases and numeric codes. JSON can only hold the first few; the others are accepted (as
# MongoDB does) and simply match nothing.
TYPE_CODES: dict[int, str] = {
    1: "double",
    2: "string",
    3: "object",
    4: "array",
    5: "binData",
    6: "undefined",
    7: "objectId",
    8: "bool",
    9: "date",
    10: "null",
    11: "regex",
    12: "dbPointer",
    13: "javascript",
    14: "symbol",
    15: "javascriptWithScope",
    16: "int",
    17: "timestamp",
    18: "long",
    19: "decimal",
    -1: "minKey",
    127: "maxKey",
}
TYPE_ALIASES = frozenset(TYPE_CODES.values()) | {"number"}


def _unsupported(op: str) -> BadRequest:
    return BadRequest(f"Unsupported query operator '{op}'.")


def _invalid(op: str, expected: str) -> BadRequest:
    return BadRequest(f"Invalid argument for '{op}': {expected}.")


def parse_filter(filter_doc: Any) -> Filter:
    """Validate a MongoDB filter document and return its filter tree.

    Raises ``BadRequest`` (and nothing else) for anything that is not a JSON object, for unsupported operators
    (``$where``, ``$expr``, ``$text``, unknown ``$x`` ...), for malformed operator arguments and for queries
    beyond the size limits. The message names the operator, e.g. ``Unsupported query operator '$where'.``
    """
    if not isinstance(filter_doc, dict):
        raise BadRequest("The query must be a JSON object.")
    _check_json(filter_doc)
    return _parse_document(filter_doc)


def _parse_document(doc: dict[str, Any]) -> Filter:
    parts: list[Filter] = []
    for key, value in doc.items():
        if key.startswith("$"):
            if key not in LOGICAL_OPERATORS:
                raise _unsupported(key)
            parts.append(_parse_logical(key, value))
        else:
            parts.append(_parse_field(key, value))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_logical(op: str, value: Any) -> Filter:
    if not isinstance(value, list) or not value or not all(isinstance(item, dict) for item in value):
        raise _invalid(op, "expected a non-empty array of objects")
    filters = tuple(_parse_document(item) for item in value)
    return {"$and": And, "$or": Or, "$nor": Nor}[op](filters)


def _parse_field(key: str, value: Any) -> Field:
    path = _split_path(key)
    if _is_operator_object(value):
        return Field(path, _parse_operators(value))
    return Field(path, Eq(value))


def _split_path(key: str) -> tuple[str, ...]:
    segments = tuple(key.split("."))
    if len(segments) > MAX_PATH_SEGMENTS:
        raise BadRequest(f"Invalid query: the path '{key}' has more than {MAX_PATH_SEGMENTS} components.")
    if sum(1 for segment in segments[1:] if is_array_index(segment)) > MAX_NUMERIC_SEGMENTS:
        raise BadRequest(
            f"Invalid query: the path '{key}' has more than {MAX_NUMERIC_SEGMENTS} numeric components."
        )
    return segments


def is_array_index(segment: str) -> bool:
    """Whether a path component also reads as an array position: canonical decimal, no sign, no leading 0."""
    return (
        len(segment) <= 9
        and segment.isascii()
        and segment.isdigit()
        and (segment == "0" or segment[0] != "0")
    )


def _is_operator_object(value: Any) -> bool:
    # MongoDB decides by the first key alone: {"$gt": 1} is an operator object, {"a": 1, "$b": 2} a literal.
    return isinstance(value, dict) and bool(value) and next(iter(value)).startswith("$")


def _parse_operators(ops: dict[str, Any]) -> Cond:
    if "$options" in ops and "$regex" not in ops:
        raise BadRequest("Invalid use of '$options': it needs a '$regex' alongside.")
    conds: list[Cond] = []
    for op, arg in ops.items():
        if not op.startswith("$"):
            raise BadRequest(f"Invalid query: '{op}' is a field name inside an object of operators.")
        if op != "$options":
            conds.append(_parse_operator(op, arg, ops))
    return conds[0] if len(conds) == 1 else AllOf(tuple(conds))


def _parse_operator(op: str, arg: Any, ops: dict[str, Any]) -> Cond:
    if op == "$eq":
        return Eq(arg)
    if op == "$ne":
        return Not(Eq(arg))
    if op in COMPARISONS:
        if isinstance(arg, dict | list):
            raise _invalid(op, "expected a string, number, boolean or null")
        return Compare(op, arg)
    if op in ("$in", "$nin"):
        values = _parse_in_values(op, arg)
        return In(values) if op == "$in" else Not(In(values))
    if op == "$exists":
        if not _is_bool_or_number(arg):
            raise _invalid(op, "expected true or false")
        return Exists(bool(arg))
    if op == "$size":
        return Size(_parse_size(arg))
    if op == "$all":
        return _parse_all(arg)
    if op == "$elemMatch":
        return _parse_elem_match(arg)
    if op == "$regex":
        return _parse_regex(arg, ops.get("$options", ""))
    if op == "$not":
        if not _is_operator_object(arg):
            raise _invalid(op, "expected a non-empty object of operators")
        return Not(_parse_operators(arg))
    if op == "$type":
        return TypeIs(_parse_types(arg))
    raise _unsupported(op)


def _is_bool_or_number(value: Any) -> bool:
    return isinstance(value, bool | int | float)


def _parse_in_values(op: str, arg: Any) -> tuple[Any, ...]:
    if not isinstance(arg, list):
        raise _invalid(op, "expected an array")
    if any(_is_operator_object(value) for value in arg):
        raise _invalid(op, "operators are not allowed inside it")
    return tuple(arg)


def _parse_size(arg: Any) -> int:
    expected = "expected a non-negative whole number"
    if isinstance(arg, bool) or not isinstance(arg, int | float):
        raise _invalid("$size", expected)
    if isinstance(arg, float) and not arg.is_integer():
        raise _invalid("$size", expected)
    if arg < 0:
        raise _invalid("$size", expected)
    return int(arg)


def _parse_all(arg: Any) -> All:
    if not isinstance(arg, list):
        raise _invalid("$all", "expected an array")
    items: list[Eq | ElemMatchValue | ElemMatchDocument] = []
    for item in arg:
        if _is_operator_object(item):
            if set(item) != {"$elemMatch"}:
                raise _invalid("$all", "only values and {'$elemMatch': ...} objects are allowed inside it")
            items.append(_parse_elem_match(item["$elemMatch"]))
        else:
            items.append(Eq(item))
    return All(tuple(items))


def _parse_elem_match(arg: Any) -> ElemMatchValue | ElemMatchDocument:
    if not isinstance(arg, dict):
        raise _invalid("$elemMatch", "expected an object")
    # As MongoDB: a first key that is a field operator makes it the value form ({$gt: 1}); anything else
    # (fields, $and/$or/$nor, or nothing) is a filter applied to each element as a document.
    if _is_operator_object(arg) and next(iter(arg)) not in LOGICAL_OPERATORS:
        return ElemMatchValue(_parse_operators(arg))
    return ElemMatchDocument(_parse_document(arg))


def _parse_types(arg: Any) -> tuple[str, ...]:
    items = arg if isinstance(arg, list) else [arg]
    if not items:
        raise _invalid("$type", "expected at least one type")
    types: list[str] = []
    for item in items:
        if isinstance(item, str) and item in TYPE_ALIASES:
            types.append(item)
        elif isinstance(item, int | float) and not isinstance(item, bool) and item in TYPE_CODES:
            types.append(TYPE_CODES[int(item)])
        else:
            raise _invalid("$type", f"unknown type {_show(item)}")
    return tuple(dict.fromkeys(types))


def _parse_regex(pattern: Any, options: Any) -> Regex:
    if not isinstance(pattern, str):
        raise _invalid("$regex", "expected a string")
    if not isinstance(options, str):
        raise _invalid("$options", "expected a string")
    unknown = set(options) - set("imsx")
    if unknown:
        raise _invalid("$options", f"unsupported flag {_show(min(unknown))} (supported: i, m, s, x)")
    translated = _RegexTranslator(pattern, options).translate()
    return Regex(pattern, options, translated, "i" in options)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------------------------------------------------
# JSON validation: the compiler may then serialise any value without surprises.


def _check_json(root: Any) -> None:
    count = 0
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise BadRequest(f"Invalid query: more than {MAX_NODES} values.")
        if depth > MAX_DEPTH:
            raise BadRequest(f"Invalid query: nested more than {MAX_DEPTH} levels deep.")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise BadRequest("Invalid query: object keys must be strings.")
                _check_string(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_string(value)
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if abs(value) >= 10**MAX_INTEGER_DIGITS:
                raise BadRequest(f"Invalid query: integers may have at most {MAX_INTEGER_DIGITS} digits.")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise BadRequest("Invalid query: numbers must be finite.")
        else:
            raise BadRequest("Invalid query: only JSON values are allowed.")


def _check_string(text: str) -> None:
    # PostgreSQL's jsonb cannot hold U+0000 (so no stored document contains it), and lone surrogates are not
    # encodable as UTF-8: either would fail inside the database instead of here.
    if "\x00" in text:
        raise BadRequest("Invalid query: strings may not contain the character U+0000.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("Invalid query: strings must be valid Unicode (no lone surrogates).") from None


# ---------------------------------------------------------------------------------------------------------
# $regex: PCRE (as MongoDB uses it) → PostgreSQL ARE, for the subset where both agree exactly.

_ASCII_SETS = {"d": "0-9", "w": "A-Za-z0-9_", "s": "\\u0009-\\u000d "}
_WORD = "[A-Za-z0-9_]"
_WORD_BOUNDARY = f"(?:(?<={_WORD})(?!{_WORD})|(?<!{_WORD})(?={_WORD}))"
_NOT_WORD_BOUNDARY = f"(?:(?<={_WORD})(?={_WORD})|(?<!{_WORD})(?!{_WORD}))"
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "a": "\a"}
_EXTENDED_SPACE = " \t\n\r\v\f"
# PCRE also skips these in extended mode (Unicode pattern white space), Python does not: refuse them there.
_AMBIGUOUS_SPACE = "\x85\u200e\u200f\u2028\u2029"
_QUANTIFIER = re.compile(r"\{(\d{1,3})(,(\d{1,3})?)?\}")


def _literal(char: str) -> str:
    """One character as an ARE atom that means exactly that character, in or out of brackets."""
    if char.isascii() and char.isalnum():
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


@dataclass(frozen=True)
class _Piece:
    """A translated part of a pattern, with what the complexity bounds need to know about it."""

    text: str
    repeatable: bool = True  # anchors and \b cannot take a quantifier
    nullable: bool = False  # can match the empty string
    copies: int = 1  # atoms once counted repeats are expanded
    optional: int = 0  # optional parts once counted repeats are expanded
    boundaries: int = 0  # \b and \B once counted repeats are expanded
    nesting: int = 1  # largest product of counted-repeat bounds along one nesting chain
    counted: bool = False  # contains a counted repeat
    assertion: bool = False  # contains ^, $, \A, \b or \B
    final: bool = False  # contains a $, after which nothing may follow


def _concatenate(pieces: list[_Piece], separator: str, alternatives: bool) -> _Piece:
    nullable = any(p.nullable for p in pieces) if alternatives else all(p.nullable for p in pieces)
    return _Piece(
        separator.join(p.text for p in pieces),
        nullable=nullable,
        copies=sum(p.copies for p in pieces),
        optional=sum(p.optional for p in pieces),
        boundaries=sum(p.boundaries for p in pieces),
        nesting=max((p.nesting for p in pieces), default=1),
        counted=any(p.counted for p in pieces),
        assertion=any(p.assertion for p in pieces),
        final=any(p.final for p in pieces),
    )


_ANCHOR = {"repeatable": False, "nullable": True, "assertion": True}


class _RegexTranslator:
    """A recursive-descent reader of the pattern that writes the equivalent ARE as it goes.

    The accepted subset: literals, ``.``, ``^``, ``$``, ``\\A``, ``\\b``, ``\\B``, classes ``[...]`` with ranges,
    ``\\d \\w \\s`` (ASCII, as PCRE without UCP) and their negations, ``\\xhh``, ``\\n \\t \\r \\f \\a``, escaped
    punctuation, groups ``(...)`` and ``(?:...)``, alternation, and the quantifiers ``* + ? {n} {n,} {n,m}``
    (lazy forms accepted: they change what is captured, never whether a string matches). Flags ``m``, ``s``
    and ``x`` are applied by the translation; ``i`` is passed to PostgreSQL. Everything else (backreferences,
    lookaround, inline flags, possessive quantifiers, Unicode properties, ``\\Z``, a bare ``{`` ...) is refused,
    and so are patterns beyond the complexity bounds above.
    """

    def __init__(self, pattern: str, options: str) -> None:
        self.text = pattern
        self.pos = 0
        self.multiline = "m" in options
        self.dotall = "s" in options
        self.extended = "x" in options
        self.depth = 0

    def fail(self, reason: str) -> BadRequest:
        return _invalid("$regex", reason)

    def translate(self) -> str:
        if len(self.text) > MAX_REGEX_LENGTH:
            raise self.fail(f"patterns are limited to {MAX_REGEX_LENGTH} characters")
        if self.extended and any(char in _AMBIGUOUS_SPACE for char in self.text):
            raise self.fail("Unicode line separators are not supported with the 'x' option")
        translated = self.alternation()
        if self.pos < len(self.text):
            raise self.fail("unbalanced ')'")
        if (
            translated.copies > MAX_REGEX_COPIES
            or translated.optional > MAX_OPTIONAL_ATOMS
            or translated.boundaries > MAX_WORD_BOUNDARIES
        ):
            raise self.fail("the pattern is too complex")
        return translated.text

    def peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def take(self) -> str:
        char = self.text[self.pos]
        self.pos += 1
        return char

    def skip_extended_space(self) -> None:
        while self.extended and self.pos < len(self.text):
            char = self.text[self.pos]
            if char in _EXTENDED_SPACE:
                self.pos += 1
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end + 1
            else:
                return

    def alternation(self) -> _Piece:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.take()
            branches.append(self.sequence())
        return _concatenate(branches, "|", alternatives=True)

    def sequence(self) -> _Piece:
        parts: list[_Piece] = []
        while True:
            self.skip_extended_space()
            char = self.peek()
            if char is None or char in "|)":
                return _concatenate(parts, "", alternatives=False)
            if parts and parts[-1].final:
                raise self.fail("'$' may only end the pattern (or one of its top-level alternatives)")
            piece = self.atom()
            self.skip_extended_space()
            if self.peek() in ("*", "+", "?", "{"):
                if not piece.repeatable:
                    raise self.fail("a quantifier follows nothing it can repeat")
                piece = self.quantified(piece)
                self.skip_extended_space()
                if self.peek() in ("*", "+", "?", "{"):
                    raise self.fail("multiple quantifiers in a row")
            parts.append(piece)

    def atom(self) -> _Piece:
        char = self.take()
        if char == "(":
            return self.group()
        if char == "[":
            return _Piece(self.char_class())
        if char == ".":
            return _Piece("." if self.dotall else "[^\\u000a]")
        if char == "^":
            return _Piece("(?:^|(?<=\\u000a))" if self.multiline else "^", **_ANCHOR)
        if char == "$":
            # PCRE's $ also matches before a final newline (with m, before any newline). Because nothing may
            # follow it, that newline can simply be consumed: a lookahead here costs PostgreSQL 100 times more.
            return _Piece("(?:\\u000a|$)" if self.multiline else "\\u000a?$", final=True, **_ANCHOR)
        if char == "\\":
            return self.escape()
        if char in "*+?":
            raise self.fail("a quantifier follows nothing it can repeat")
        if char == "{":
            raise self.fail("a literal '{' must be escaped as '\\{'")
        return _Piece(_literal(char))

    def group(self) -> _Piece:
        if self.peek() == "?":
            self.take()
            if self.peek() != ":":
                raise self.fail("only (...) and (?:...) groups are supported")
            self.take()
        self.depth += 1
        if self.depth > 64:
            raise self.fail("groups are nested too deeply")
        inner = self.alternation()
        self.depth -= 1
        if self.peek() != ")":
            raise self.fail("missing ')'")
        self.take()
        return replace(inner, text=f"(?:{inner.text})", repeatable=True)

    def escape(self) -> _Piece:
        if self.peek() is None:
            raise self.fail("the pattern ends with a backslash")
        char = self.take()
        if char in _ASCII_SETS:
            return _Piece(f"[{_ASCII_SETS[char]}]")
        if char.lower() in _ASCII_SETS:
            return _Piece(f"[^{_ASCII_SETS[char.lower()]}]")
        if char == "b":
            return _Piece(_WORD_BOUNDARY, boundaries=1, **_ANCHOR)
        if char == "B":
            return _Piece(_NOT_WORD_BOUNDARY, boundaries=1, **_ANCHOR)
        if char == "A":
            return _Piece("^", **_ANCHOR)
        return _Piece(_literal(self.escaped_character(char)))

    def escaped_character(self, char: str) -> str:
        """The character an escape other than a class shorthand stands for (``char`` follows the backslash)."""
        if char in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[char]
        if char == "x":
            digits = self.text[self.pos : self.pos + 2]
            if len(digits) != 2 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise self.fail("\\x needs exactly two hexadecimal digits")
            self.pos += 2
            return chr(int(digits, 16))
        if char.isascii() and char.isalnum():
            raise self.fail(f"the escape '\\{char}' is not supported")
        return char

    def char_class(self) -> str:
        negated = self.peek() == "^"
        if negated:
            self.take()
        items: list[str] = []
        first = True
        while True:
            if self.peek() is None:
                raise self.fail("missing ']'")
            char = self.take()
            if char == "]" and not first:
                break
            first = False
            if char == "[":
                raise self.fail("a literal '[' inside a class must be escaped as '\\['")
            start = self.class_member(char)
            if self.peek() == "-" and self.text[self.pos + 1 : self.pos + 2] not in ("]", ""):
                self.take()
                if start is None:
                    raise self.fail("a class shorthand cannot start a range")
                end_char = self.take()
                if end_char == "[":
                    raise self.fail("a literal '[' inside a class must be escaped as '\\['")
                end = self.class_member(end_char)
                if end is None or ord(end) < ord(start):
                    raise self.fail("bad character range")
                items.append(f"{_literal(start)}-{_literal(end)}")
            elif start is None:
                items.append(_ASCII_SETS[self.text[self.pos - 1]])
            else:
                items.append(_literal(start))
        return "[" + ("^" if negated else "") + "".join(items) + "]"

    def class_member(self, char: str) -> str | None:
        """The literal character of one class member, or None for a shorthand (\\d, \\w, \\s) just read."""
        if char != "\\":
            return char
        if self.peek() is None:
            raise self.fail("missing ']'")
        escaped = self.take()
        if escaped in _ASCII_SETS:
            return None
        if escaped.lower() in _ASCII_SETS:
            raise self.fail(f"'\\{escaped}' is not supported inside a class")
        if escaped == "b":
            return "\b"
        return self.escaped_character(escaped)

    def quantified(self, body: _Piece) -> _Piece:
        """``body`` with the quantifier at the current position."""
        if body.assertion:
            # Repeated lookarounds make PostgreSQL's matching (and sometimes its compiler) explode.
            raise self.fail("anchors and word boundaries cannot be repeated")
        char = self.peek()
        if char != "{":
            self.take()
            nullable = char != "+" or body.nullable
            piece = replace(body, text=body.text + char, nullable=nullable, optional=body.optional + nullable)
        else:
            match = _QUANTIFIER.match(self.text, self.pos)
            if match is None:
                raise self.fail("a literal '{' must be escaped as '\\{'")
            self.pos = match.end()
            low = int(match.group(1))
            high = None if match.group(2) and match.group(3) is None else int(match.group(3) or low)
            if low > MAX_REPEAT or (high is not None and high > MAX_REPEAT):
                raise self.fail(f"repetition counts above {MAX_REPEAT} are not supported")
            if high is not None and high < low:
                raise self.fail("bad repetition range")
            text = f"{{{low}}}" if high == low else (f"{{{low},}}" if high is None else f"{{{low},{high}}}")
            bound = max(high if high is not None else low + 1, 1)
            nesting = (body.nesting if body.counted else 1) * bound
            if nesting > (MAX_EMPTY_REPEAT if body.nullable else MAX_NESTED_REPEAT):
                raise self.fail("the pattern is too complex")
            piece = _Piece(
                body.text + text,
                nullable=low == 0 or body.nullable,
                copies=body.copies * bound,
                optional=body.optional * bound + (low == 0),
                boundaries=body.boundaries * bound,
                nesting=nesting,
                counted=True,
            )
        # A lazy marker changes what is captured, never whether a string matches: drop it.
        if self.peek() == "?":
            self.take()
        if self.peek() == "+":
            raise self.fail("possessive quantifiers are not supported")
        return piece

"""MongoDB Extended JSON v2 (relaxed and canonical) → the plain JSON values RERUM stores, pure.

A RERUM collection holds JSON documents, so only the types a JSON document can turn into appear in
it: ObjectId (``_id`` of documents Mongo minted), dates, and the number types. Each maps to the value
the server itself would hold:

- ``{"$oid": h}`` → the 24-hex string ``h`` in lower case (``ObjectId.toHexString()``, as RERUM mints);
- ``{"$date": ...}`` (ISO string, ``{"$numberLong": ms}`` or legacy milliseconds) → RERUM's timestamp
  text ``YYYY-MM-DDTHH:MM:SS.mmm`` in UTC without a zone, the form of ``__rerum.createdAt``;
- ``$numberInt`` / ``$numberLong`` → ``int``; ``$numberDouble`` → ``float``;
- ``$numberDecimal`` → ``decimal.Decimal`` with its exact digits (written out verbatim by ``encode``).

JSON has no NaN or infinity, so those are refused, as are decimals beyond a double's range (the
server parses stored documents with orjson, which refuses them) and every BSON type without a JSON
form (binary, regex, timestamp, min/max key, code ...). A ``$``-key that names no type is data, as in
``bson.json_util``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

MAX_DEPTH = 100  # MongoDB's nesting limit, and the server's (rerum_server.web.bodies.MAX_DOCUMENT_DEPTH)

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_DOUBLE_MAX = Decimal(repr(1.7976931348623157e308))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_UNSUPPORTED = frozenset(
    (
        "$binary", "$uuid", "$regularExpression", "$regex", "$timestamp", "$minKey", "$maxKey",
        "$symbol", "$code", "$scope", "$dbPointer", "$undefined", "$ref",
    )
)  # fmt: skip
_TYPES = frozenset(("$oid", "$date", "$numberInt", "$numberLong", "$numberDouble", "$numberDecimal"))
_WRAPPERS = _TYPES | _UNSUPPORTED


class ExtendedJsonError(ValueError):
    """A value that has no faithful plain-JSON form (the message says which, and where)."""


def decode(value: Any) -> Any:
    """``value`` (parsed JSON) with every type wrapper replaced by its plain value.

    Containers are rewritten in place, so the result is ``value`` itself unless ``value`` is a wrapper;
    use ``decode_document`` to also learn whether anything changed.
    """
    return _decode(value, 1, [])


def decode_document(doc: dict[str, Any]) -> bool:
    """Replace the wrappers inside ``doc`` in place; True if there was any."""
    changes: list[None] = []
    _decode(doc, 1, changes)
    return bool(changes)


def _decode(value: Any, depth: int, changes: list[None]) -> Any:
    if isinstance(value, dict):
        if _WRAPPERS.isdisjoint(value):
            if depth > MAX_DEPTH:
                raise ExtendedJsonError(f"nests objects and arrays deeper than {MAX_DEPTH} levels")
            for key, item in value.items():
                if isinstance(item, (dict, list)):
                    new = _decode(item, depth + 1, changes)
                    if new is not item:
                        value[key] = new  # replacing a value keeps the key's position
            return value
        changes.append(None)
        return _scalar(value)
    if isinstance(value, list):
        if depth > MAX_DEPTH:
            raise ExtendedJsonError(f"nests objects and arrays deeper than {MAX_DEPTH} levels")
        for index, item in enumerate(value):
            if isinstance(item, (dict, list)):
                new = _decode(item, depth + 1, changes)
                if new is not item:
                    value[index] = new
        return value
    return value


def _scalar(wrapper: dict[str, Any]) -> Any:
    key = next(k for k in wrapper if k in _WRAPPERS)
    if key in _UNSUPPORTED:
        raise ExtendedJsonError(f"holds a BSON {key[1:]} value, which has no JSON form")
    if len(wrapper) != 1:
        raise ExtendedJsonError(f"has a {key} wrapper with other keys: {_show(wrapper)}")
    raw = wrapper[key]
    if key == "$date":
        return _date(raw)
    if not isinstance(raw, str):
        raise ExtendedJsonError(f"has a {key} whose value is not a string: {_show(wrapper)}")
    if key == "$oid":
        return _object_id(raw)
    if key == "$numberDouble":
        return _double(raw)
    if key == "$numberDecimal":
        return _decimal(raw)
    return _integer(raw, key, _INT32 if key == "$numberInt" else _INT64)


def _object_id(raw: str) -> str:
    if len(raw) != 24 or not all(c in "0123456789abcdefABCDEF" for c in raw):
        raise ExtendedJsonError(f"has an $oid that is not 24 hexadecimal digits: {raw!r}")
    return raw.lower()


def _integer(raw: str, key: str, bounds: tuple[int, int]) -> int:
    digits = raw[1:] if raw[:1] == "-" else raw
    if not digits.isdigit() or not digits.isascii():
        raise ExtendedJsonError(f"has a {key} that is not an integer: {raw!r}")
    number = int(raw)
    if not bounds[0] <= number <= bounds[1]:
        raise ExtendedJsonError(f"has a {key} out of its range: {raw}")
    return number


def _double(raw: str) -> float:
    try:
        number = float(raw)
    except ValueError:
        raise ExtendedJsonError(f"has a $numberDouble that is not a number: {raw!r}") from None
    if not math.isfinite(number):
        raise ExtendedJsonError(f"has the double {raw}, which JSON cannot hold")
    return number


def _decimal(raw: str) -> Decimal:
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise ExtendedJsonError(f"has a $numberDecimal that is not a number: {raw!r}") from None
    if not number.is_finite():
        raise ExtendedJsonError(f"has the decimal {raw}, which JSON cannot hold")
    if abs(number) > _DOUBLE_MAX:
        # orjson, which reads every stored document back, refuses numbers a double cannot hold.
        raise ExtendedJsonError(f"has the decimal {raw}, beyond the range the server can read back")
    return number


def _date(raw: Any) -> str:
    if (
        isinstance(raw, dict)
        and len(raw) == 1
        and "$numberLong" in raw
        and isinstance(raw["$numberLong"], str)
    ):
        millis = _integer(raw["$numberLong"], "$date", _INT64)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        millis = raw  # legacy Extended JSON: milliseconds as a number
    elif isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise ExtendedJsonError(f"has a $date that is not an ISO-8601 date: {raw!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return format_millis(moment.astimezone(UTC))
    else:
        raise ExtendedJsonError(f"has a malformed $date: {_show(raw)}")
    try:
        moment = _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise ExtendedJsonError(f"has a $date outside the years 1-9999: {millis} ms") from None
    return format_millis(moment)


def format_millis(moment: datetime) -> str:
    """RERUM's timestamp text of a UTC ``moment``, zero-padded for every year from 1 to 9999."""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond // 1000:03d}"
    )


def _show(value: Any) -> str:
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= 80 else text[:77] + "..."

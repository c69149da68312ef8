"""Splitting an export into documents: one per line, or the elements of one JSON array; gzip or not."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Item:
    """One exported document: its position (``number`` counts from 1) and its raw JSON text."""

    number: int
    where: str  # "line 12", or "element 7 (line 3)" in an array: what the report names
    raw: bytes


class FramingError(ValueError):
    """The export's framing is broken (an array that does not parse): no later document can be found."""


def open_export(stream: BinaryIO) -> BinaryIO:
    """``stream`` itself, or its decompressed content when it starts like gzip (stdin included)."""
    head = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return stream


def lines(stream: BinaryIO) -> Iterator[Item]:
    """One document per line (mongoexport's default); blank lines are skipped."""
    for number, raw in enumerate(stream, start=1):
        if raw.strip():
            yield Item(number, f"line {number}", raw)


def array_elements(stream: BinaryIO) -> Iterator[Item]:
    """The elements of one JSON array (``mongoexport --jsonArray``, pretty-printed or not).

    Each element is found with the standard library's scanner (which stops at its end), and its text
    is handed on unparsed: the record reader parses it as it parses a line.
    """
    decoder = json.JSONDecoder()
    text, position, line, eof = "", 0, 1, False

    def fill() -> bool:
        nonlocal text, position, eof
        chunk = stream.read(_CHUNK)
        if not chunk:
            eof = True
            return False
        text = text[position:] + chunk.decode("utf-8", errors="surrogateescape")
        position = 0
        return True

    def skip_blank() -> str:
        nonlocal position, line
        while True:
            while position < len(text) and text[position] in " \t\r\n":
                line += text[position] == "\n"
                position += 1
            if position < len(text) or eof:
                return text[position : position + 1]
            fill()

    if skip_blank() != "[":
        raise FramingError("--json-array: the input does not start with '['")
    position += 1
    number = 0
    while True:
        mark = skip_blank()
        if mark == "]" and number == 0:
            return
        if mark == "":
            raise FramingError(f"--json-array: the array is not closed (after element {number})")
        number += 1
        while True:
            try:
                _, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                if eof or not fill():
                    raise FramingError(f"--json-array: element {number} (line {line}): {exc.msg}") from None
                continue
            # A value ending exactly at the end of the buffer (a number) may go on in the next chunk.
            if end < len(text) or eof or not fill():
                break
        raw = text[position:end]
        yield Item(number, f"element {number} (line {line})", raw.encode("utf-8", errors="surrogateescape"))
        line += raw.count("\n")
        position = end
        mark = skip_blank()
        if mark == "]":
            return
        if mark == "":
            raise FramingError(f"--json-array: the array is not closed (after element {number})")
        if mark != ",":
            raise FramingError(f"--json-array: expected ',' or ']' after element {number} (line {line})")
        position += 1

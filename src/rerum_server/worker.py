"""How granian builds each worker's application: first tie the worker's life to the parent's.

A worker whose ``rerum serve`` was SIGKILLed (or OOM-killed) would otherwise keep answering on the
shared socket, and a new ``rerum serve`` would then join that port. On Linux the kernel can deliver a
signal to a process when its parent dies (``PR_SET_PDEATHSIG``): that needs no cooperation from a
parent that had no chance to run any code.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys
from typing import Any

from rerum_server import logs
from rerum_server.settings import Settings

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent ``parent_pid`` dies (a no-op off Linux).

    The parent is the thread that forked us: granian forks workers from its main thread, which lives as
    long as the server.
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def load_app(parent_pid: int, target: str) -> Any:
    """granian's ``target_loader``: the application of ``module:factory`` for a worker of ``parent_pid``.

    The worker's log lines go through a queue to a writer thread (granian has just configured logging
    for the worker; ours replaces it).
    """
    die_with_parent(parent_pid)
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level, queued=True)
    module, _, factory = target.partition(":")
    return getattr(importlib.import_module(module), factory)()

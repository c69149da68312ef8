"""One verification: run the workload (and the nemesis), save the history if asked, check it.
What ``rerum verify`` runs."""

from __future__ import annotations

import time
from pathlib import Path

from rerum_server.verify.checker import Report, check
from rerum_server.verify.history import History, Recorder, save
from rerum_server.verify.nemesis import Nemesis
from rerum_server.verify.workload import WorkloadConfig, run

# The agent ``rerum verify`` mints a token for when it is given a data directory instead of a token.
VERIFY_AGENT = "https://example.org/agent/rerum-verify"


def verify(
    config: WorkloadConfig,
    *,
    recorder: Recorder | None = None,
    nemesis: Nemesis | None = None,
    save_to: Path | None = None,
) -> tuple[History, Report]:
    """Run ``config`` against its servers, with ``nemesis`` injecting faults meanwhile (it must record
    into ``recorder``), and check the history (saved first, so a crash of the checker never loses a run)."""
    recorder = Recorder() if recorder is None else recorder
    if nemesis is not None:
        nemesis.start(deadline=time.monotonic() + config.duration_s)
    try:
        history = run(config, recorder)
    finally:
        if nemesis is not None:
            nemesis.stop()
    if nemesis is not None:
        # A fault that overran the workload (a slow restart, say) is recorded only once it has healed.
        history = recorder.history({**history.meta, "faults": nemesis.faults, "fault_errors": nemesis.errors})
    if save_to is not None:
        save(history, save_to)
    return history, check(history)

"""One verification: run the workload, save the history if asked, check it. What ``rerum verify`` runs."""

from __future__ import annotations

from pathlib import Path

from rerum_server.verify.checker import Report, check
from rerum_server.verify.history import History, Recorder, save
from rerum_server.verify.workload import WorkloadConfig, run

# The agent ``rerum verify`` mints a token for when it is given a data directory instead of a token.
VERIFY_AGENT = "https://example.org/agent/rerum-verify"


def verify(
    config: WorkloadConfig, *, recorder: Recorder | None = None, save_to: Path | None = None
) -> tuple[History, Report]:
    """Run ``config`` against its server and check the history (saved first, so a crash of the checker
    never loses a run)."""
    history = run(config, recorder)
    if save_to is not None:
        save(history, save_to)
    return history, check(history)

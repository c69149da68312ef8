"""What the verification runs measured, shown at the end of every test session (CI logs included).

Tests run in xdist workers, whose output pytest does not relay; they write their tables here and the
controller prints them in the terminal summary (``tests/conftest.py``).
"""

from __future__ import annotations

import shutil

from tests.support.server import TEST_DATA

REPORTS = TEST_DATA / "reports"


def publish(title: str, text: str) -> None:
    """Keep ``text`` for the session's summary under ``title`` (also printed, for ``pytest -s``)."""
    print(f"\n{title}\n{text}")
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / (title.replace("/", "-").replace(" ", "_") + ".txt")).write_text(f"{title}\n{text}\n")


def clear() -> None:
    """Forget the reports of an earlier session."""
    shutil.rmtree(REPORTS, ignore_errors=True)


def collected() -> list[str]:
    """The reports of this session, in title order."""
    return [path.read_text() for path in sorted(REPORTS.glob("*.txt"))] if REPORTS.exists() else []

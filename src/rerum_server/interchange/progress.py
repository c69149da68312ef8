"""The import's progress: a bar with rate and ETA on a terminal, a plain line now and then elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


def describe(done: int, elapsed_s: float, fraction: float | None) -> str:
    """``1,234,000 documents  21,345/s  62%  ETA 0:00:18`` (no percentage or ETA when the size is unknown)."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    text = f"{done:,} documents  {rate:,.0f}/s"
    if fraction is not None and fraction > 0:
        remaining = elapsed_s * (1 - fraction) / fraction
        text += f"  {fraction:.0%}  ETA {_clock(remaining)}"
    return text


def bar(fraction: float | None, width: int = 24) -> str:
    if fraction is None:
        return ""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "." * (width - filled) + "] "


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class Progress:
    """Reports documents read so far to ``out``: redrawn in place on a terminal, else every ``every_s``."""

    def __init__(
        self,
        out: TextIO,
        fraction: Callable[[], float | None],
        *,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._fraction = fraction
        self._terminal = out.isatty()
        self._every_s = 0.2 if self._terminal else every_s
        self._clock = clock
        self._started = clock()
        self._shown_at = self._started

    def update(self, done: int) -> None:
        now = self._clock()
        if now - self._shown_at >= self._every_s:
            self._shown_at = now
            self._show(done, now)

    def finish(self, done: int) -> None:
        self._show(done, self._clock())
        if self._terminal:
            self._out.write("\n")
        self._out.flush()

    def _show(self, done: int, now: float) -> None:
        fraction = self._fraction()
        text = describe(done, now - self._started, fraction)
        if self._terminal:
            self._out.write("\r\x1b[K" + bar(fraction) + text)
        else:
            self._out.write("import: " + text + "\n")
        self._out.flush()

"""Progress of an evaluation: a rich bar on a terminal, periodic log lines otherwise.

Both are driven by the client's ticker a few times a second from its counters, so
reporting costs nothing per row.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Protocol

__all__ = ["LogReporter", "Reporter", "RichReporter", "make_reporter"]

logger = logging.getLogger("runners.evaluation")

LOG_INTERVAL_S = 10.0
"""Seconds between progress log lines when there is no terminal."""


class Reporter(Protocol):
    """Shows progress; `update` is called a few times a second."""

    def update(self, done: int, errors: int) -> None:
        """Rows finished (written or buffered) and errors, of this run."""

    def close(self) -> None:
        """Final state; release the terminal."""


class RichReporter:
    """A rich progress bar on stderr: rows, rows/s, errors, ETA."""

    def __init__(self, title: str, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TextColumn("{task.fields[rate]:>8} rows/s"),
            TextColumn("[red]{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self._task = self._progress.add_task(title, total=total, rate="-", errors=0)
        self._progress.start()

    def update(self, done: int, errors: int) -> None:
        """Move the bar."""
        speed = self._progress.tasks[0].speed
        rate = f"{speed:,.0f}" if speed else "-"
        self._progress.update(self._task, completed=done, errors=errors, rate=rate)

    def close(self) -> None:
        """Stop the live display."""
        self._progress.stop()


class LogReporter:
    """One INFO line every `interval` seconds: rows, rows/s, errors, ETA."""

    def __init__(self, title: str, total: int, interval: float = LOG_INTERVAL_S) -> None:
        self._title = title
        self._total = total
        self._interval = interval
        self._start = time.monotonic()
        self._last_log = self._start
        self._done = 0
        self._errors = 0

    def update(self, done: int, errors: int) -> None:
        """Log when the interval has passed."""
        self._done, self._errors = done, errors
        now = time.monotonic()
        if now - self._last_log >= self._interval:
            self._last_log = now
            self._log(now)

    def _log(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self._done / elapsed
        left = self._total - self._done
        eta = f"{left / rate:.0f} s" if rate > 0 else "unknown"
        logger.info(
            "%s: %d/%d rows, %.0f rows/s, %d errors, ETA %s",
            self._title,
            self._done,
            self._total,
            rate,
            self._errors,
            eta,
        )

    def close(self) -> None:
        """Log the final line."""
        self._log(time.monotonic())


def make_reporter(title: str, total: int, progress: bool | None) -> Reporter:
    """A rich bar when `progress` is True (or None and stderr is a terminal), else log lines."""
    use_rich = sys.stderr.isatty() if progress is None else progress
    return RichReporter(title, total) if use_rich else LogReporter(title, total)

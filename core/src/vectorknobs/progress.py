"""A dependency-free progress bar for the command line: drawn on stderr, and only when it is a terminal."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


class ProgressBar:
    """``with ProgressBar("ingest", total=1000) as bar: bar.update(250)`` draws ``ingest [##----] 25% 250/1000``.

    On a pipe or a file nothing is written (logs and ``--json`` output stay clean). Redraws at most every
    ``interval`` seconds; the last state is drawn when it closes.
    """

    def __init__(self, label: str, total: int | None = None, *, unit: str = "", stream: TextIO | None = None,
                 interval: float = 0.1) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_tty(self.stream)
        self.done = 0
        self.interval = interval
        self._started = time.monotonic()
        self._drawn = 0.0
        self._width = 0

    def update(self, done: int, total: int | None = None) -> None:
        """Set how much is done (and, when it becomes known, the total)."""
        self.done = done
        if total is not None:
            self.total = total
        now = time.monotonic()
        if self.enabled and now - self._drawn >= self.interval:
            self._drawn = now
            self._draw(now)

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def line(self, now: float | None = None) -> str:
        """The text of the bar as it would be drawn now, fitted to the terminal's width."""
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        rate = f"{self.done / elapsed:,.0f}{self.unit}/s"
        columns = shutil.get_terminal_size((80, 24)).columns
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            tail = f" {fraction:4.0%} {self.done:,}/{self.total:,}{self.unit} {rate}"
            room = max(columns - len(self.label) - len(tail) - 4, 10)
            filled = int(room * fraction)
            return f"{self.label} [{'#' * filled}{'-' * (room - filled)}]{tail}"[:columns - 1]
        return f"{self.label} {self.done:,}{self.unit} {rate}"[:columns - 1]

    def _draw(self, now: float) -> None:
        text = self.line(now)
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False

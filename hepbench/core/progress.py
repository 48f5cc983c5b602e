"""Progress on long work: rich's progress bar on a terminal, one plain line per update in logs.

Both forms carry the same text, `LABEL DONE/TOTAL UNIT (RATE UNIT/s)  NOTE`. The bar is drawn
during the timed training windows, so it must cost the steps next to nothing: rich's auto-refresh
thread is off (no thread competes with the step for the CPU), and `update` redraws the bar at most
every REDRAW_SECONDS and at the total, since one redraw costs milliseconds (docs/reports.md) where a
GPU step may take less.
"""

from __future__ import annotations

import sys
import time
import weakref
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Column

from hepbench.core.terminal import is_terminal

REDRAW_SECONDS = 0.5


def _stop(bar: RichProgress) -> None:
    bar.stop()  # idempotent: shows the cursor again, ends the bar's line


class Progress:
    """`update(done, note)` after each item; the bar (on a terminal) ends its line at `total`.
    `clock` (seconds, monotonic) is injectable for tests."""

    def __init__(
        self,
        total: int,
        label: str,
        unit: str = "items",
        stream: TextIO | None = None,
        width: int = 30,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.total, self.label, self.unit, self.width = total, label, unit, width
        self.stream = stream or sys.stderr
        self.tty = is_terminal(self.stream)
        self.clock = clock
        self.start = clock()
        self.done = 0
        self._bar: RichProgress | None = None
        self._drawn = -REDRAW_SECONDS  # clock() of the last redraw: the first update draws
        if self.tty:
            console = Console(file=self.stream, force_terminal=True, highlight=False, emoji=False)
            # No redirection of sys.stdout/sys.stderr: other code keeps writing where it writes.
            # The bar and the clock keep their width; on a narrow terminal the text is cut (_fit), not the bar.
            self._text_column = Column(no_wrap=True, overflow="ellipsis")
            self._bar = RichProgress(
                BarColumn(bar_width=width, table_column=Column(width=width, no_wrap=True)),
                TimeElapsedColumn(table_column=Column(width=7, no_wrap=True)),
                TextColumn("{task.description}", markup=False, table_column=self._text_column),
                console=console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
                get_time=clock,
            )
            self._fit()
            self._task = self._bar.add_task(self.text(0), total=max(total, 1))
            self._bar.start()  # draws the empty bar
            # An exception that ends the work early must not leave the terminal's cursor hidden.
            self._finalizer = weakref.finalize(self, _stop, self._bar)

    def _fit(self) -> None:
        """Cap the text at what the terminal (as wide as it is now) leaves beside the bar and the clock."""
        self._text_column.max_width = max(self._bar.console.width - self.width - 9, 10)

    def text(self, done: int, note: str = "") -> str:
        elapsed = self.clock() - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"{self.label} {done}/{self.total} {self.unit} ({rate:.1f} {self.unit}/s)"
        return f"{text}  {note}" if note else text

    def update(self, done: int, note: str = "") -> None:
        self.done = done
        text = self.text(done, note)
        if self._bar is None:
            self.stream.write(text + "\n")
            self.stream.flush()
            return
        self._bar.update(self._task, completed=min(done, max(self.total, 1)), description=text)
        now = self.clock()
        if done >= self.total:
            self._fit()
            self.close()  # the last redraw, then the line ends
        elif now - self._drawn >= REDRAW_SECONDS:
            self._fit()
            self._bar.refresh()
            self._drawn = now

    def close(self) -> None:
        """End the bar's line now (the bar's last state stays on screen); nothing in plain mode."""
        if self._bar is not None:
            self._finalizer()

    @property
    def elapsed(self) -> float:
        return self.clock() - self.start

"""The timestamps of every report: UTC, ISO 8601 with milliseconds (a JSON Schema "date-time")."""

from __future__ import annotations

import datetime
import time


def now_iso() -> str:
    """Now, e.g. '2026-11-27T09:00:00.123+00:00'."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


class Stopwatch:
    """Started when made; `timing()` is a report's timing block: start, end, wall_seconds."""

    def __init__(self) -> None:
        self.start = now_iso()
        self._t0 = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self._t0

    def timing(self, ndigits: int | None = None) -> dict:
        """{"start", "end" (now), "wall_seconds"}; wall_seconds rounded to `ndigits` when given."""
        seconds = self.seconds()
        return {
            "start": self.start,
            "end": now_iso(),
            "wall_seconds": seconds if ndigits is None else round(seconds, ndigits),
        }

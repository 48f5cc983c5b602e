"""Report timestamps: UTC, ISO 8601 with milliseconds, accepted as a JSON Schema date-time."""

from __future__ import annotations

import datetime
import re
import time

from hepbench.core.schema import format_checker
from hepbench.core.timestamps import Stopwatch, now_iso


def test_now_iso_is_utc_with_milliseconds():
    text = now_iso()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", text), text
    moment = datetime.datetime.fromisoformat(text)
    assert abs((datetime.datetime.now(datetime.UTC) - moment).total_seconds()) < 5
    assert format_checker().conforms(text, "date-time")


def test_stopwatch_timing_block():
    watch = Stopwatch()
    time.sleep(0.01)
    timing = watch.timing()
    assert list(timing) == ["start", "end", "wall_seconds"] and timing["start"] == watch.start
    assert timing["start"] <= timing["end"] and 0.01 <= timing["wall_seconds"] < 5
    rounded = watch.timing(ndigits=1)["wall_seconds"]
    assert rounded == round(rounded, 1)

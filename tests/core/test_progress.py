"""The progress bar: one plain line per update in logs; rich's bar on a terminal, with no thread."""

from __future__ import annotations

import io
import re
import threading

from hepbench.core.progress import REDRAW_SECONDS, Progress

LINE = re.compile(r"^window 1/2 (\d+)/3 steps \(\d+\.\d steps/s\)(  loss \d)?$")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_one_per_update():
    out = io.StringIO()
    bar = Progress(3, "window 1/2", "steps", out)
    for done in (1, 2, 3):
        bar.update(done, f"loss {done}")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and all(LINE.match(line) for line in lines), lines
    assert [LINE.match(line).group(1) for line in lines] == ["1", "2", "3"]
    assert bar.done == 3 and bar.elapsed > 0
    bar.close()  # nothing to do in plain mode
    assert out.getvalue().count("\n") == 3


def test_the_terminal_bar_redraws_in_place_and_ends_its_line_at_the_total():
    out = FakeTerminal()
    threads = threading.active_count()
    bar = Progress(3, "window 1/2", "steps", out)
    bar.update(1, "loss 1")
    assert threading.active_count() == threads  # no refresh thread while the clock runs
    assert not out.getvalue().endswith("\n")
    bar.update(2, "loss 2")
    bar.update(3, "loss 3")
    text = out.getvalue()
    assert "━" in text and "\r" in text  # rich's bar, redrawn on one line
    assert "window 1/2 3/3 steps" in text
    # 80 columns (a StringIO terminal's width): the bar keeps its 30 and the clock its 7, the text is cut.
    last = text.rsplit("\r", 1)[-1]
    assert last.count("━") == 30 and "0:00:00" in last and "(" in last and last.rstrip("\n\x1b[?25h").endswith("…")
    assert text.startswith("\x1b[?25l") and text.endswith("\n\x1b[?25h")  # cursor hidden, then shown again


def test_work_ended_early_still_gives_the_cursor_back():
    out = FakeTerminal()
    bar = Progress(10, "synth ttbar", "events", out)
    bar.update(4)
    bar.close()
    assert out.getvalue().endswith("\x1b[?25h")
    bar.close()  # twice is harmless
    assert out.getvalue().count("\x1b[?25h") == 1


def test_quick_updates_redraw_the_bar_only_now_and_then():
    # A GPU step can take less than one redraw: between redraws an update only records the count.
    now = 0.0
    out = FakeTerminal()
    bar = Progress(1000, "window 1/2", "steps", out, clock=lambda: now)
    for done in range(1, 499):
        bar.update(done)
    assert out.getvalue().count("\r") == 1  # the first update drew; the others, at the same instant, did not
    now = 0.99 * REDRAW_SECONDS
    bar.update(499)
    assert out.getvalue().count("\r") == 1
    now = REDRAW_SECONDS
    bar.update(500)
    assert out.getvalue().count("\r") == 2 and "500/1000 steps (1000.0" in out.getvalue()  # the rate by the same clock
    for done in range(501, 1000):
        bar.update(done)
    assert out.getvalue().count("\r") == 2
    bar.update(1000)
    assert out.getvalue().count("\r") == 3 and "1000/1000 steps" in out.getvalue()  # the total is always drawn

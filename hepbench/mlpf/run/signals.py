"""SIGTERM/SIGINT (batch-system time limits, Ctrl-C) as an exception, so a run can stop cleanly.

The handler raises `Interrupted` in the main thread. Python runs it between bytecodes, so a
TensorFlow step in C++ finishes first and the copy stops at a clean point; the caller writes a
failure report and exits with 128 + the signal number, the shell convention.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from hepbench.core.errors import HepbenchError

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(HepbenchError):
    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


@contextmanager
def interruptible() -> Iterator[None]:
    """Inside: the first SIGTERM/SIGINT raises Interrupted; later ones are ignored, so the
    clean-up that follows (reports, stopping children) is not itself interrupted."""
    fired: list[int] = []

    def handler(signum, frame):
        if not fired:
            fired.append(signum)
            raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def deferred() -> Iterator[None]:
    """Inside: a SIGTERM/SIGINT waits until the block has finished, then goes to the handler that was
    in place (interruptible's raises Interrupted). For writing a report that a launcher's SIGTERM,
    which often follows a lost rank's error at once, must not cut short. In another thread (a
    watchdog's), where no signal handler runs, it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if caught and callable(previous[caught[0]]):
        previous[caught[0]](caught[0], None)

"""Ordered prefetch: order kept across threads, bounded depth, errors handed over, threads stopped."""

from __future__ import annotations

import itertools
import random
import threading
import time

import pytest

from hepbench.mlpf.data import prefetch
from hepbench.mlpf.data.prefetch import prefetched

_OLD: set[threading.Thread] = set()  # prefetch threads of earlier tests, still winding down


@pytest.fixture(autouse=True)
def _earlier_threads():
    _OLD.clear()
    _OLD.update(t for t in threading.enumerate() if t.name == "hepbench-prefetch")


def _prefetch_threads() -> list[threading.Thread]:
    """The live prefetch threads this test started."""
    return [t for t in threading.enumerate() if t.name == "hepbench-prefetch" and t not in _OLD]


def _wait_until(condition, seconds: float = 30.0) -> bool:
    """Poll `condition` until it holds (True) or `seconds` have passed (False)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_results_come_in_job_order_whichever_thread_finishes_first():
    rng = random.Random(0)
    delays = [rng.uniform(0, 0.005) for _ in range(60)]

    def make(k):
        time.sleep(delays[k])
        return k * k

    assert list(prefetched(range(60), make, depth=8, threads=4)) == [k * k for k in range(60)]
    assert _wait_until(lambda: not _prefetch_threads())  # a finished iterator leaves no thread behind


def test_at_most_depth_jobs_are_taken_ahead_of_the_consumer():
    started = []
    it = prefetched(itertools.count(), lambda k: started.append(k) or k, depth=3, threads=2)
    assert next(it) == 0
    assert _wait_until(lambda: len(started) == 4)  # the one taken and 3 ahead
    time.sleep(0.2)
    assert len(started) == 4
    it.close()


@pytest.mark.parametrize("threads", [1, 3])
def test_an_error_in_make_reaches_the_consumer_at_its_place(threads):
    def make(k):
        if k == 3:
            raise ValueError("event 3 is broken")
        return k

    got = []
    with pytest.raises(ValueError, match="event 3 is broken"):
        for value in prefetched(range(10), make, depth=4, threads=threads):
            got.append(value)
    assert got == [0, 1, 2]
    assert _wait_until(lambda: not _prefetch_threads())


def test_an_error_in_the_jobs_reaches_the_consumer():
    def jobs():
        yield 1
        yield 2
        raise RuntimeError("no more jobs")

    it = prefetched(jobs(), lambda k: k, depth=2, threads=2)
    assert [next(it), next(it)] == [1, 2]
    with pytest.raises(RuntimeError, match="no more jobs"):
        next(it)


def test_closing_or_dropping_the_iterator_stops_its_threads():
    it = prefetched(itertools.count(), lambda k: k, depth=4, threads=2)
    next(it)
    assert len(_prefetch_threads()) == 2
    it.close()
    assert _wait_until(lambda: not _prefetch_threads())
    it = prefetched(itertools.count(), lambda k: k, depth=4, threads=2)
    next(it)
    del it  # garbage: the generator is closed
    assert _wait_until(lambda: not _prefetch_threads())


def test_interpreter_exit_stops_and_joins_running_threads():
    it = prefetched(itertools.count(), lambda k: time.sleep(0.01) or k, depth=4, threads=2)
    next(it)
    prefetch._stop_at_exit()
    assert not _prefetch_threads()  # joined, not merely told to stop
    del it


def test_depth_and_threads_must_be_positive():
    with pytest.raises(ValueError, match="depth and threads must be >= 1"):
        prefetched(range(3), lambda k: k, depth=0)

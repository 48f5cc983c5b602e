"""Ordered prefetch: `make(job)` for each job, computed ahead by background threads, yielded in order.

The input pipeline's batches are built here while the consumer (a train step) runs. Reading an
event (array_record's zstd decompression, in C++) releases the GIL, so a few threads read several
events at once where one thread would read them one after another.

- Order: results come in the jobs' order, whichever thread finished first.
- Depth: at most `depth` jobs are in flight or done but not yet taken.
- Errors: an exception in `make` or in the jobs iterator reaches the consumer at that job's
  place, with its traceback; nothing after it is yielded.
- Lifetime: the threads are daemons and stop once the consumer closes the iterator or drops it
  (garbage collection closes a generator), so a half-read endless pipeline never keeps the process
  alive nor its threads running. At interpreter exit the threads still running are stopped and
  joined (each finishes its batch, milliseconds): left inside array_record's C++ reader while the
  process tears down its C++ runtime, they would abort it ("terminate called without an active
  exception").
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

J = TypeVar("J")
R = TypeVar("R")

_POLL_SECONDS = 0.1  # how soon an idle thread notices that the consumer has gone
_EXIT_JOIN_SECONDS = 10.0  # the most the interpreter's exit waits for one thread to finish its batch
_END = object()  # marks the position after the last job


class _State:
    """What the worker threads share; never refers to the consumer's generator, so that can be collected."""

    def __init__(self, jobs: Iterator, make: Callable, depth: int):
        self.jobs, self.make = jobs, make
        self.slots = threading.Semaphore(depth)  # one per job in flight or done and not yet taken
        self.take_lock = threading.Lock()  # serialises next(jobs) and the numbering
        self.done = threading.Condition()
        self.results: dict[int, tuple[bool, object]] = {}  # position -> (ok, result or exception)
        self.issued = 0
        self.exhausted = False
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def _publish(self, position: int, ok: bool, value) -> None:
        with self.done:
            self.results[position] = (ok, value)
            self.done.notify_all()

    def work(self) -> None:
        while not self.stop.is_set():
            if not self.slots.acquire(timeout=_POLL_SECONDS):
                continue
            with self.take_lock:
                if self.exhausted or self.stop.is_set():
                    return
                position = self.issued
                self.issued += 1
                try:
                    job = next(self.jobs)
                except StopIteration:
                    self.exhausted = True
                    self._publish(position, True, _END)
                    return
                except BaseException as e:  # noqa: BLE001 - handed to the consumer
                    self.exhausted = True
                    self._publish(position, False, e)
                    return
            try:
                result = (True, self.make(job))
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                result = (False, e)
            self._publish(position, *result)

    def take(self, position: int):
        with self.done:
            while position not in self.results:
                self.done.wait(_POLL_SECONDS)
            ok, value = self.results.pop(position)
        self.slots.release()
        if not ok:
            raise value
        return value


# The states whose threads may still run: their threads refer to them, the consumer need not.
_running: weakref.WeakSet[_State] = weakref.WeakSet()


@atexit.register
def _stop_at_exit() -> None:
    states = list(_running)
    for state in states:
        state.stop.set()
    for state in states:
        for thread in state.threads:
            thread.join(_EXIT_JOIN_SECONDS)


def prefetched(jobs: Iterable[J], make: Callable[[J], R], depth: int, threads: int = 1) -> Iterator[R]:
    """`make(job)` for every job of `jobs`, in order, computed up to `depth` jobs ahead by
    min(threads, depth) daemon threads (see the module docstring). depth and threads >= 1."""
    if depth < 1 or threads < 1:
        raise ValueError(f"prefetch depth and threads must be >= 1, not {depth} and {threads}")
    state = _State(iter(jobs), make, depth)
    state.threads = [
        threading.Thread(target=state.work, name="hepbench-prefetch", daemon=True) for _ in range(min(threads, depth))
    ]
    _running.add(state)
    for thread in state.threads:
        thread.start()
    return _consume(state)


def _consume(state: _State) -> Iterator:
    try:
        position = 0
        while True:
            value = state.take(position)
            if value is _END:
                return
            position += 1
            yield value
    finally:
        state.stop.set()

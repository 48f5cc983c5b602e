"""SIGTERM as an exception (hepbench/mlpf/run/signals.py): raised once inside `interruptible`, held
back inside `deferred` until the block (a report being written) has finished."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from hepbench.mlpf.run.signals import Interrupted, deferred, interruptible


def test_a_signal_during_a_deferred_block_waits_for_its_end_then_interrupts():
    done = []
    with pytest.raises(Interrupted, match="interrupted by SIGTERM") as stopped:
        with interruptible():
            with deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                done.append("the report")  # not cut short
            done.append("after the block")  # not reached: the held signal raises at the block's end
    assert done == ["the report"] and stopped.value.exit_code == 143


def test_a_deferred_block_without_a_signal_changes_nothing():
    with interruptible():
        with deferred():
            pass
        with pytest.raises(Interrupted, match="interrupted by SIGINT"):  # the handler is interruptible's again
            os.kill(os.getpid(), signal.SIGINT)


def test_in_another_thread_deferred_is_a_plain_block():
    # signal.signal works in the main thread only; a watchdog thread writing a report must not fail.
    errors = []

    def work():
        try:
            with deferred():
                pass
        except Exception as e:  # noqa: BLE001 - what the test looks for
            errors.append(e)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == []

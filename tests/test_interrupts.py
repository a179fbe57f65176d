"""Ctrl-C held between steps: a hold records SIGINT, nests, and raises only where the code says it may stop."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from mlpq import interrupts


def ctrl_c() -> None:
    """SIGINT to this process; Python runs its handler before the next bytecode of the main thread."""
    os.kill(os.getpid(), signal.SIGINT)


def test_a_held_ctrl_c_is_recorded_not_raised_and_the_handler_comes_back() -> None:
    assert threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT)
    with interrupts.held() as hold:
        ctrl_c()
        assert hold.interrupted and interrupts.holding()
        with pytest.raises(KeyboardInterrupt):
            interrupts.stop_if_interrupted()
    assert signal.getsignal(signal.SIGINT) is before and not interrupts.holding()


def test_an_inner_hold_hands_its_ctrl_c_to_the_outer_one() -> None:
    with interrupts.held() as outer:
        with interrupts.held() as inner:
            ctrl_c()
        assert inner.interrupted and outer.interrupted


def test_without_a_ctrl_c_nothing_stops() -> None:
    with interrupts.held() as hold:
        interrupts.stop_if_interrupted()
    assert not hold.interrupted
    interrupts.stop_if_interrupted()  # no hold: nothing held, nothing raised

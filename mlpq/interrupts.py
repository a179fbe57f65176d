"""Ctrl-C held back while a step must not be split: a hold records SIGINT, and the code decides when to stop.

A hold works on the main thread (the only one Python delivers signals to);
elsewhere it is inert. Holds nest: an inner hold that saw a Ctrl-C hands it to
the outer one when it ends, so the outermost caller learns of it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType


@dataclass
class Hold:
    """Whether a Ctrl-C came while held."""

    interrupted: bool = False


_active: list[Hold] = []


@contextmanager
def held() -> Iterator[Hold]:
    """Record SIGINT instead of raising ``KeyboardInterrupt`` until the block ends; never raises for it."""
    hold = Hold()
    if threading.current_thread() is not threading.main_thread():
        yield hold
        return

    def record(signum: int, frame: FrameType | None) -> None:
        hold.interrupted = True

    previous = signal.signal(signal.SIGINT, record)
    _active.append(hold)
    try:
        yield hold
    finally:
        _active.pop()
        signal.signal(signal.SIGINT, previous)
        if hold.interrupted and _active:
            _active[-1].interrupted = True


def holding() -> bool:
    """Whether a hold is active (a caller will hear of a Ctrl-C that an inner hold saw)."""
    return bool(_active)


def stop_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C is being held: call it where stopping is safe."""
    if any(hold.interrupted for hold in _active):
        raise KeyboardInterrupt

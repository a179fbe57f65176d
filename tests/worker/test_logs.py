"""The worker's log rules on their own: an outage in a few lines, tracebacks only under MLPQ_DEBUG=1."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from billiard.einfo import ExceptionWithTraceback

from mlpq.worker.logs import ONE_LINE, REMIND_EVERY_S, Outage, duration, reason


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose one handler carries the worker's filter, and what it wrote."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ONE_LINE)
    logger = logging.getLogger("tests.worker.test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_an_outage_logs_when_it_begins_once_a_minute_while_it_lasts_and_when_it_ends(
        captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    clock = Clock()
    outage = Outage(logger, "maintenance", clock=clock)
    outage.succeeded()
    for _ in range(3600):  # an hour of rounds a second apart
        outage.failed(raised(ConnectionError("connection refused\nIs the server running?")))
        clock.now += 1
    outage.succeeded()
    outage.succeeded()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "maintenance: outage began: ConnectionError: connection refused"
    assert len(lines) == 1 + 59 + 1 and REMIND_EVERY_S == 60  # began, a reminder a minute after, ended
    assert lines[1] == "maintenance: outage goes on (1 min 0 s, 61 failed rounds): ConnectionError: connection refused"
    assert lines[-1] == "maintenance: outage ended after 1 h 0 min (3600 failed rounds)"
    outage.failed(raised(OSError("again")))
    assert stream.getvalue().splitlines()[-1] == "maintenance: outage began: OSError: again"


def test_a_traceback_becomes_its_exceptions_line(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.error("Task handler raised error: %r", ValueError("quoted"), exc_info=raised(ValueError("quoted")))
    logger.error("Unrecoverable error", exc_info=raised(KeyError("not quoted")))
    logger.error("Pool error", exc_info=raised(ExceptionWithTraceback(OSError("from a pool process"), "tb")))
    assert stream.getvalue().splitlines() == [
        "Task handler raised error: ValueError('quoted')",
        "Unrecoverable error: KeyError: 'not quoted'",
        "Pool error: OSError: from a pool process",
    ]


def test_under_mlpq_debug_tracebacks_stay(captured: tuple[logging.Logger, io.StringIO],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    logger, stream = captured
    monkeypatch.setenv("MLPQ_DEBUG", "1")
    Outage(logger, "maintenance").failed(raised(ConnectionError("refused")))
    logger.error("Unrecoverable error", exc_info=raised(KeyError("boom")))
    text = stream.getvalue()
    assert text.count("Traceback (most recent call last)") == 2 and "KeyError: 'boom'" in text


def test_a_reason_is_one_short_printable_line() -> None:
    assert reason(RuntimeError("first\x1b[2J\nsecond")) == "RuntimeError: first\\x1b[2J"
    assert reason(TimeoutError()) == "TimeoutError"
    assert len(reason(ValueError("x" * 10_000))) < 250
    assert "secret" not in reason(OSError(f"redis://:secret@host:6379/0 {'x' * 300}"))


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0 s"), (59.6, "1 min 0 s"), (200, "3 min 20 s"),
                                               (7500, "2 h 5 min")])
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text

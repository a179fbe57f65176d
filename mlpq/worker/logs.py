"""How a worker logs: one line per event, tracebacks only under ``MLPQ_DEBUG=1``, an outage in three lines.

mlpq's own lines say why in their text and pass ``exc_info=traceback_of(exc)``;
``OneLineTracebacks`` does the same to Celery's, kombu's and billiard's lines
(a lost pool process, an unrecoverable error). Celery's ``Task … succeeded``
line says nothing ``job … succeeded|failed`` does not, and says it wrongly
for a failed job (the task itself returns normally): it is shown only at
``--loglevel DEBUG``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from billiard.einfo import ExceptionWithTraceback
from celery.signals import after_setup_logger, after_setup_task_logger
from celery.utils.log import get_multiprocessing_logger

from mlpq.redact import mask_url, one_line

DEBUG_VARIABLE = "MLPQ_DEBUG"
TRACE_LOGGER = "celery.app.trace"
"""Celery's logger of each task's outcome (``Task mlpq.run_job[…] succeeded in 0.1s: None``)."""
REASON_CHARS = 200
"""The most of an exception's message a line quotes."""
REMIND_EVERY_S = 60.0
"""An outage that goes on is logged again at most this often."""


def tracebacks() -> bool:
    """Whether log lines carry tracebacks: ``MLPQ_DEBUG`` is set (as for the CLI)."""
    return bool(os.environ.get(DEBUG_VARIABLE))


def traceback_of(exc: BaseException) -> BaseException | None:
    """``exc`` for a log call's ``exc_info`` under ``MLPQ_DEBUG=1``; ``None`` (no traceback) otherwise."""
    return exc if tracebacks() else None


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def reason(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message, any URL's password masked."""
    line = first_line(exc)
    return one_line(mask_url(f"{type(exc).__name__}: {line}" if line else type(exc).__name__), REASON_CHARS)


class OneLineTracebacks(logging.Filter):
    """Without ``MLPQ_DEBUG``, a record's traceback gives way to its exception's one line, added to the message
    unless the message already quotes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.exc_info or record.exc_text) and not tracebacks():
            message = record.getMessage()
            exc = record.exc_info[1] if record.exc_info else None
            if isinstance(exc, ExceptionWithTraceback):  # billiard's wrapper of a pool process's exception
                exc = exc.exc
            if exc is not None and first_line(exc) not in message:
                message = f"{message}: {reason(exc)}"
            record.msg, record.args, record.exc_info, record.exc_text = message, (), None, None
        return True


ONE_LINE = OneLineTracebacks()
PROGRAM_OUTPUT = ("mlpq.job.stdout", "mlpq.job.stderr")
"""The loggers of a command job's output: the job's log keeps it, the worker's own log does not repeat it."""


def not_program_output(record: logging.LogRecord) -> bool:
    return record.name not in PROGRAM_OUTPUT


def configure(loglevel: str) -> None:
    """Make this process's worker log as the module says, once Celery has set its handlers up."""

    def filter_handlers(logger: logging.Logger, **_: Any) -> None:
        for handler in [*logger.handlers, *get_multiprocessing_logger().handlers]:  # billiard logs on its own
            handler.addFilter(ONE_LINE)
            handler.addFilter(not_program_output)

    after_setup_logger.connect(filter_handlers, weak=False)
    after_setup_task_logger.connect(filter_handlers, weak=False)
    if logging.getLevelName(loglevel) != logging.DEBUG:
        logging.getLogger(TRACE_LOGGER).setLevel(logging.WARNING)


class Outage:
    """A repeated action that fails for a while, logged in three lines however many rounds fail: when it starts
    failing, a reminder at most every ``remind_s`` seconds while it goes on, and when it works again."""

    def __init__(self, logger: logging.Logger, what: str, remind_s: float = REMIND_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.what, self.remind_s, self.clock = logger, what, remind_s, clock
        self.since: float | None = None
        """When (``clock``) the current outage began; ``None`` while the action works."""
        self.reminded = 0.0
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        now = self.clock()
        self.failures += 1
        if self.since is None:
            self.since, self.reminded = now, now
            self.log.error("%s: outage began: %s", self.what, reason(exc), exc_info=traceback_of(exc))
        elif now - self.reminded >= self.remind_s:
            self.reminded = now
            self.log.error("%s: outage goes on (%s, %d failed rounds): %s", self.what, duration(now - self.since),
                           self.failures, reason(exc), exc_info=traceback_of(exc))

    def succeeded(self) -> None:
        if self.since is not None:
            self.log.warning("%s: outage ended after %s (%d failed rounds)", self.what,
                             duration(self.clock() - self.since), self.failures)
            self.since, self.failures = None, 0


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 5 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"

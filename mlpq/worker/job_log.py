"""Each job's log: what the job logs while it runs, and what the worker says about it, kept in the ledger.

While an attempt runs (``JobLog.capturing``), a handler on the root logger takes every record of this
process at ``CAPTURE_LEVEL`` or above (Python ``logging`` under any logger, and ``warnings`` through
``logging.captureWarnings``), except the worker's own machinery (``MACHINERY``). Its ``emit`` only appends
to a buffer; a flusher thread writes the buffer in batches every ``FLUSH_INTERVAL_S``, so the job's loop
never waits for the database. Records of ``mlpq.job.stdout`` / ``mlpq.job.stderr`` (a command's output, a
line per record) are stored with source ``stdout`` / ``stderr``, a ``print`` (Celery's ``celery.redirected``)
as ``stdout``, others as ``job``; the worker's events (``event``, ``worker_event``) as ``worker``.

What a job logs is capped per job, across attempts (``MAX_LINES``, ``MAX_BYTES``; each line cut to
``MAX_LINE_CHARS``); past the cap lines are counted, and the attempt's end stores one ``… N lines dropped``
line. The end (``write_end``) stores the last lines and the outcome in the transaction that records the
job's outcome, so whoever follows the log sees them by the time the job has ended.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from mlpq.db import job_logs
from mlpq.db.job_logs import WORKER, NewLine

log = logging.getLogger(__name__)

CAPTURE_LEVEL = logging.INFO
MAX_LINES = 10_000
MAX_BYTES = 2**20
"""The most a job's log keeps of what it logged, in lines and in UTF-8 bytes, across its attempts."""
MAX_LINE_CHARS = 8192
"""A longer line is cut to this many characters (its last one ``…``)."""
FLUSH_INTERVAL_S = 0.5
MACHINERY = ("celery", "kombu", "billiard", "amqp", "redis", "mlpq.worker", "mlpq.db", "mlpq.messages")
"""Loggers (and their children) of the worker itself, never part of a job's log."""
SOURCES = {"mlpq.job.stdout": "stdout", "mlpq.job.stderr": "stderr", "celery.redirected": "stdout"}
"""Loggers whose records are a program's output, and the source they are stored as; every other is ``job``."""

Retrying = Callable[..., Any]
"""How a write is retried while the database is away: ``mlpq.worker.execute.with_db_retries``."""

_current: JobLog | None = None


def worker_event(text: str, level: str = "INFO") -> None:
    """Add a worker line (e.g. ``resumed at step 5``) to the log of the attempt this process runs, if any."""
    if _current is not None:
        _current.event(text, level)


def outcome_line(attempt: int, status: str, error: str | None, finished: bool) -> tuple[str, str]:
    """The worker's last line of an attempt that ended, and its level."""
    if not finished:
        return f"attempt {attempt} was taken over before it finished: outcome dropped", "WARNING"
    if error is None:
        return f"attempt {attempt} {status}", "INFO"
    return f"attempt {attempt} {status}: {error}", "ERROR" if status == "failed" else "WARNING"


class Budget:
    """What is left of a job's cap; once a line does not fit, every later one is dropped (and counted)."""

    def __init__(self, lines: int, size: int) -> None:
        self.lines, self.bytes, self.dropped = lines, size, 0

    def take(self, size: int) -> bool:
        if self.lines > 0 and size <= self.bytes:
            self.lines, self.bytes = self.lines - 1, self.bytes - size
            return True
        self.lines, self.dropped = 0, self.dropped + 1
        return False


def stored_lines(text: str) -> Iterator[tuple[str, int]]:
    """A message as the lines stored, each with its size in UTF-8 bytes: split at newlines (a trailing one
    ends the last line), each cut to ``MAX_LINE_CHARS``; NUL (which PostgreSQL's text refuses) and lone
    surrogates (which UTF-8 cannot carry) written as escapes."""
    pieces = text.split("\n")
    if len(pieces) > 1 and pieces[-1] == "":
        pieces.pop()
    for piece in pieces:
        if len(piece) > MAX_LINE_CHARS:
            piece = piece[:MAX_LINE_CHARS - 1] + "…"
        if "\x00" in piece:
            piece = piece.replace("\x00", "\\x00")
        try:
            size = len(piece.encode())
        except UnicodeEncodeError:
            piece = piece.encode("utf-8", "backslashreplace").decode()
            size = len(piece.encode())
        yield piece, size


def is_machinery(name: str) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in MACHINERY)


class Capture(logging.Handler):
    """Hands each record of the job (not the worker's machinery, not the flusher's) to its ``JobLog``."""

    def __init__(self, job_log: JobLog) -> None:
        super().__init__(CAPTURE_LEVEL)
        self.job_log = job_log
        self.formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        source = SOURCES.get(record.name, "job")
        if source == "job" and is_machinery(record.name) or threading.get_ident() == self.job_log.flusher_id:
            return
        try:
            text = record.getMessage()
            if record.exc_info:
                text = f"{text}\n{self.formatter.formatException(record.exc_info)}"
            if record.stack_info:
                text = f"{text}\n{self.formatter.formatStack(record.stack_info)}"
            self.job_log.add(source, record.levelname, text)
        except Exception:
            self.handleError(record)


class AtLeast(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


@contextmanager
def root_level_at_most(level: int) -> Iterator[None]:
    """Within the block, records at ``level`` are made even if the worker logs less (``--loglevel``); its own
    handlers still print only what they printed before."""
    root = logging.getLogger()
    previous = root.level
    if root.getEffectiveLevel() <= level:
        yield
        return
    keep = AtLeast(root.getEffectiveLevel())
    handlers = list(root.handlers)
    for handler in handlers:
        handler.addFilter(keep)
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(previous)
        for handler in handlers:
            handler.removeFilter(keep)


class JobLog:
    """One attempt's log: a buffer filled by the capture and the worker's events, written in batches.

    A write that went through though its reply was lost is not stored again: a retry first counts the
    attempt's stored lines.
    """

    def __init__(self, engine: Engine, job_id: str, attempt: int, retrying: Retrying, *, retry_s: float,
                 budget: Budget, dropped_before: int = 0, interval: float = FLUSH_INTERVAL_S) -> None:
        self.engine, self.job_id, self.attempt = engine, job_id, attempt
        self.retrying, self.retry_s, self.interval = retrying, retry_s, interval
        self.budget, self.dropped_before = budget, dropped_before
        self.pending: list[NewLine] = []
        self.unsent: list[NewLine] = []
        """Lines taken from the buffer whose write has not surely gone through."""
        self.stored = 0
        """This attempt's lines surely stored."""
        self.tried: int | None = None
        """The attempt's stored lines if the last write, not confirmed, went through; ``None``: none unsure."""
        self.tried_end = False
        """Whether that write was the attempt's end."""
        self.gone = False
        """The job's row is gone (its ledger replaced): nothing more is written."""
        self.lock = threading.Lock()
        self.flusher_id: int | None = None
        self._stop = threading.Event()

    @classmethod
    def open(cls, engine: Engine, job_id: str, attempt: int, retrying: Retrying, *, retry_s: float,
             interval: float = FLUSH_INTERVAL_S) -> JobLog:
        """The log of a new attempt, with what the job's earlier attempts left of its cap; it becomes the one
        ``worker_event`` adds to."""
        global _current

        def read() -> job_logs.LogUsage:
            with engine.connect() as connection:
                return job_logs.usage(connection, job_id)

        used = retrying(read, deadline_s=retry_s)
        budget = Budget(max(0, MAX_LINES - used.lines), max(0, MAX_BYTES - used.bytes))
        _current = cls(engine, job_id, attempt, retrying, retry_s=retry_s, budget=budget,
                       dropped_before=used.dropped, interval=interval)
        return _current

    # Filling the buffer: cheap, from any thread.

    def add(self, source: str, level: str, text: str) -> None:
        """Buffer what the job wrote, as far as the cap allows."""
        with self.lock:
            for line, size in stored_lines(text):
                if self.budget.take(size):
                    self.pending.append((source, level, line))

    def event(self, text: str, level: str = "INFO") -> None:
        """Buffer a worker line (never capped: a few per attempt)."""
        with self.lock:
            self.pending.extend((WORKER, level, line) for line, _ in stored_lines(text))

    # Writing it.

    @contextmanager
    def capturing(self) -> Iterator[None]:
        """Within the block, this process's log records and warnings go into the log, flushed in batches."""
        handler = Capture(self)
        flusher = threading.Thread(target=self._flush_every_interval, name="job-log", daemon=True)
        self._stop.clear()
        flusher.start()
        self.flusher_id = flusher.ident
        root = logging.getLogger()
        with warnings.catch_warnings(), root_level_at_most(CAPTURE_LEVEL):
            # catch_warnings restores the warning filters and hook afterwards, and makes each job see its
            # warnings again though an earlier job in this process saw them.
            captured = getattr(warnings.showwarning, "__module__", None) == logging.__name__
            logging.captureWarnings(True)
            root.addHandler(handler)
            try:
                yield
            finally:
                root.removeHandler(handler)
                if not captured:
                    logging.captureWarnings(False)
                self._stop.set()
                flusher.join()

    def _flush_every_interval(self) -> None:
        self.flush()  # the worker's first lines at once, stamped near the time they say
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        """Write the buffer in one transaction, retried while the database is away; a write that still
        fails is tried again with the next flush."""
        if self.gone or not (self.pending or self.unsent):
            return

        def write() -> None:
            with self.engine.begin() as connection:
                self._store(connection)

        try:
            self.retrying(write, deadline_s=self.retry_s)
        except IntegrityError:  # the job's row is gone: its ledger was replaced under the worker
            self.gone = True
        except (OperationalError, InterfaceError) as exc:
            log.warning("job %s: log write failed, tried again later: %s", self.job_id, type(exc).__name__)
        else:
            self._committed()

    def write_end(self, connection: Connection, outcome: str, level: str = "INFO") -> None:
        """In the caller's transaction (the one that records the job's outcome): the rest of the buffer,
        the ``… N lines dropped`` line if this attempt dropped any, and ``outcome``; a retried transaction
        may call it again."""
        global _current
        extra: list[NewLine] = [(WORKER, level, line) for line, _ in stored_lines(outcome)]
        self._store(connection, extra, self.dropped_before + self.budget.dropped if self.budget.dropped else None)
        if _current is self:
            _current = None

    def end_alone(self, outcome: str, level: str = "WARNING") -> None:
        """``write_end`` in a transaction of its own (an attempt that records no outcome: its lease lost)."""
        if self.gone:
            return

        def write() -> None:
            with self.engine.begin() as connection:
                self.write_end(connection, outcome, level)

        try:
            self.retrying(write, deadline_s=self.retry_s)
        except (IntegrityError, OperationalError, InterfaceError) as exc:
            log.warning("job %s: its log's last lines are lost: %s", self.job_id, type(exc).__name__)

    def _store(self, connection: Connection, end: list[NewLine] | None = None, dropped: int | None = None) -> None:
        """Add what is unsent (refilled from the buffer) to the transaction, then at the ``end`` the dropped
        line and the ``end`` lines; unless the last try, whose commit was not confirmed, stored them."""
        if self.tried is not None:
            if job_logs.count_lines(connection, self.job_id, self.attempt) >= self.tried:  # it went through
                self.stored, self.unsent = self.tried, []
                if self.tried_end:
                    return
            self.tried = None
        with self.lock:
            self.unsent.extend(self.pending)
            self.pending = []
        job_logs.add_lines(connection, self.job_id, self.attempt, self.unsent)
        count = self.stored + len(self.unsent)
        if end is not None:
            if dropped is not None:
                job_logs.set_dropped(connection, self.job_id, self.attempt, dropped)
                count += 1
            job_logs.add_lines(connection, self.job_id, self.attempt, end)
            count += len(end)
        self.tried, self.tried_end = count, end is not None

    def _committed(self) -> None:
        if self.tried is not None:
            self.stored, self.unsent, self.tried = self.tried, [], None

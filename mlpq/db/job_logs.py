"""Each job's log in the ledger: lines per attempt in the order written, stamped by the database.

The worker writes them (``mlpq.worker.job_log``); the CLI and the UI read them with ``read_log``. What a
job logs is capped per job; the lines past the cap are counted in one worker line, ``… N lines dropped``,
which each attempt that drops more replaces with the new total (``set_dropped``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, LargeBinary, and_, cast, delete, func, insert, select

from mlpq.db.schema import JOB_LOGS

READ_LIMIT = 1000
"""The most lines one ``read_log`` returns; the caller reads on from the last one's id."""
WORKER = "worker"
SOURCES = ("job", WORKER, "stdout", "stderr")
DROPPED = re.compile(r"… (\d+) lines dropped")
DROPPED_LIKE = "… % lines dropped"

LOG = JOB_LOGS.c


@dataclass(frozen=True)
class LogLine:
    id: int
    attempt: int
    at: datetime
    source: str
    """``job`` (the job's logging and warnings), ``stdout``/``stderr`` (a command's output), ``worker``."""
    level: str
    """The logging level's name: ``INFO``, ``WARNING``, ..."""
    line: str


@dataclass(frozen=True)
class LogUsage:
    """What a job's earlier attempts took of its log's cap."""

    lines: int
    bytes: int
    """UTF-8 bytes of those lines."""
    dropped: int
    """Lines dropped past the cap so far (the ``… N lines dropped`` line's N)."""


NewLine = tuple[str, str, str]
"""A line to store: source, level, text."""


def is_dropped_line(source: str, line: str) -> bool:
    return source == WORKER and DROPPED.fullmatch(line) is not None


def dropped_line(total: int) -> str:
    return f"… {total} lines dropped"


def _dropped_marker() -> ColumnElement[bool]:
    return and_(LOG.source == WORKER, LOG.line.like(DROPPED_LIKE))


def add_lines(connection: Connection, job_id: str, attempt: int, lines: Iterable[NewLine]) -> None:
    """Store ``lines`` in one batched INSERT, in their order; the database stamps each (``db_row_time``)."""
    values = [{"job_id": job_id, "attempt": attempt, "source": source, "level": level, "line": text}
              for source, level, text in lines]
    if values:
        connection.execute(insert(JOB_LOGS), values)


def count_lines(connection: Connection, job_id: str, attempt: int) -> int:
    """How many lines attempt ``attempt`` of the job has stored (a retried write checks it went through)."""
    return connection.execute(select(func.count()).select_from(JOB_LOGS)
                              .where(LOG.job_id == job_id, LOG.attempt == attempt)).scalar_one()


def usage(connection: Connection, job_id: str) -> LogUsage:
    """What the job's stored lines take of its cap: every line but the worker's own."""
    # Bytes, not characters: PostgreSQL's octet_length; SQLite's length() of the text as a BLOB.
    octets = func.octet_length(LOG.line) if connection.dialect.name == "postgresql" else \
        func.length(cast(LOG.line, LargeBinary))
    lines, size = connection.execute(select(func.count(), func.coalesce(func.sum(octets), 0))
                                     .where(LOG.job_id == job_id, LOG.source != WORKER)).one()
    return LogUsage(int(lines), int(size), dropped_so_far(connection, job_id))


def dropped_so_far(connection: Connection, job_id: str) -> int:
    """The N of the job's ``… N lines dropped`` line; 0 without one."""
    found = connection.execute(select(LOG.line).where(LOG.job_id == job_id, _dropped_marker())
                               .order_by(LOG.id.desc()).limit(1)).scalar_one_or_none()
    match = DROPPED.fullmatch(found) if found is not None else None
    return int(match[1]) if match else 0


def set_dropped(connection: Connection, job_id: str, attempt: int, total: int) -> None:
    """Replace the job's ``… N lines dropped`` line by one with ``total``, at the end of its log."""
    connection.execute(delete(JOB_LOGS).where(LOG.job_id == job_id, _dropped_marker()))
    add_lines(connection, job_id, attempt, [(WORKER, "WARNING", dropped_line(total))])


def read_log(connection: Connection, job_id: str, *, attempt: int | None = None, after_id: int = 0,
             limit: int = READ_LIMIT) -> list[LogLine]:
    """The job's lines after line ``after_id`` (of attempt ``attempt``, or all), at most ``limit``, in order."""
    query = select(LOG.id, LOG.attempt, LOG.at, LOG.source, LOG.level, LOG.line).where(
        LOG.job_id == job_id, LOG.id > after_id)
    if attempt is not None:
        query = query.where(LOG.attempt == attempt)
    return [LogLine(*row) for row in connection.execute(query.order_by(LOG.id).limit(limit))]

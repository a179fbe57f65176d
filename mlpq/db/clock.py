"""The database server's clock: every lease, heartbeat and job timestamp is stamped and compared with it.

Each host's clock differs; a heartbeat stamped by one worker and compared by
another host's reaper would turn clock skew into "lease expired". ``db_now()``
is a SQL expression evaluated by the database: PostgreSQL's ``now()``, and on
SQLite (whose "server" is the local file, so the local clock) a text timestamp
in the format SQLAlchemy stores, so stored values and ``db_now()`` compare as text.
``db_row_time()`` is the same clock read as each row is written, for times that
order rows (a job's ``created_at``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, DateTime, TypeDecorator, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class db_now(FunctionElement[datetime]):  # noqa: N801 (reads like the SQL function it is)
    """The database's current UTC time plus ``offset`` (negative for the past)."""

    type = UTCDateTime()
    inherit_cache = True

    def __init__(self, offset: timedelta = timedelta()) -> None:
        super().__init__(bindparam(None, offset.total_seconds(), unique=True))


@compiles(db_now, "postgresql")
def _postgresql_now(element: db_now, compiler: Any, **kw: Any) -> str:
    return f"(now() + make_interval(secs => {compiler.process(element.clauses, **kw)}))"


@compiles(db_now, "sqlite")
def _sqlite_now(element: db_now, compiler: Any, **kw: Any) -> str:
    # strftime's %f is "SS.SSS"; three more zeros give SQLAlchemy's six-digit microseconds.
    offset = compiler.process(element.clauses, **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', printf('%+.3f seconds', {offset}))"


class db_row_time(FunctionElement[datetime]):  # noqa: N801 (reads like the SQL function it is)
    """The database's clock as each row is written: unlike ``db_now``, distinct for each row of a transaction,
    so rows stamped with it sort in the order they were written (e.g. a sweep's jobs)."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(db_row_time, "postgresql")
def _postgresql_row_time(element: db_row_time, compiler: Any, **kw: Any) -> str:
    return "clock_timestamp()"


@compiles(db_row_time, "sqlite")
def _sqlite_row_time(element: db_row_time, compiler: Any, **kw: Any) -> str:
    # SQLite's own clock counts whole milliseconds, too coarse to order the rows of one transaction. Its
    # clock is this host's (an SQLite ledger is always local: WAL needs it), read here to the microsecond
    # when the statement runs.
    return compiler.process(bindparam("row_time", callable_=utcnow, type_=UTCDateTime(), unique=True), **kw)


def read_db_now(connection: Connection) -> datetime:
    """The database's current time, as an aware UTC datetime."""
    return connection.execute(select(db_now())).scalar_one()


def utcnow() -> datetime:
    """This host's current time, as an aware UTC datetime."""
    return datetime.now(timezone.utc)

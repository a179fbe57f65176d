"""Engines for SQLite (WAL, busy timeout) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from mlpq.errors import MlpqError, UsageError
from mlpq.redact import shown

SQLITE_BUSY_TIMEOUT_MS = 30_000


class DatabaseURLError(UsageError, ValueError):
    """The database URL cannot be parsed or names an unsupported backend."""


class LedgerDirectoryError(MlpqError, OSError):
    """An SQLite ledger's directory does not exist (only the default one is created)."""


def normalise_url(url: str) -> str:
    """Parse ``url``; plain ``postgresql://`` means psycopg 3. Raises ``DatabaseURLError`` (password masked)."""
    try:
        parsed = make_url(url)
        port = parsed.port
    except (ArgumentError, ValueError):
        raise DatabaseURLError(f"malformed database URL {shown(url)}: use sqlite:///PATH or "
                               "postgresql://USER@HOST[:PORT]/DB") from None
    if port is not None and not 0 < port < 65536:
        raise DatabaseURLError(f"malformed database URL {shown(url)}: the port is not a number from 1 to 65535")
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql") and parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend not in ("sqlite", "postgresql"):
        raise DatabaseURLError(f"unsupported database {shown(backend)}: use sqlite:/// or postgresql://")
    return parsed.render_as_string(hide_password=False)


def check_sqlite_directory(path: Path) -> None:
    """Create the default ledger's directory; any other ledger's must exist. Raises ``LedgerDirectoryError``."""
    from mlpq.config import default_database_url

    if path.parent.is_dir():
        return
    if f"sqlite:///{path}" == default_database_url():
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    raise LedgerDirectoryError(f"no such directory: {shown(str(path.parent))} (for the SQLite ledger "
                               f"{shown(path.name)}); create it, or leave MLPQ_DATABASE_URL unset for the default")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take over transaction control so BEGIN IMMEDIATE can be emitted (SQLAlchemy's pysqlite recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    # Switching a new file to WAL needs an exclusive lock that SQLite does not wait for (no busy
    # handler): processes opening a new ledger together retry. Once in WAL, the pragma takes no lock.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_begin(conn: Any) -> None:
    # Take the write lock up front: a deferred read→write upgrade can fail with "database is locked".
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, pooled: bool = True, existing: bool = False) -> Engine:
    """An engine for ``url`` with the backend's settings. It creates no tables: ``mlpq.db.migrate`` does.

    ``pooled=False`` keeps no connection open between uses, for a process that forks. ``existing``: an
    SQLite file is opened read-write only, never created (a worker's ledger deleted under it stays gone).
    """
    url = normalise_url(url)
    pool = {} if pooled else {"poolclass": NullPool}
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            check_sqlite_directory(Path(path))
            if existing:
                url = f"sqlite:///file:{path}?mode=rw&uri=true"
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        # No pre-ping: it costs a round trip per checkout, and a connection lost to a restart raises
        # a disconnect error that invalidates the pool; ledger writes are retried (worker.execute).
        engine = create_engine(url, connect_args={"connect_timeout": 5}, **pool)
    return engine

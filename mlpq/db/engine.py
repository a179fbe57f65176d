"""Engines for SQLite (WAL, busy timeout) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool

from mlpq.errors import MlpqError
from mlpq.locations import default_database_url, normalise_database_url, sqlite_file
from mlpq.redact import shown

SQLITE_BUSY_TIMEOUT_MS = 30_000


class LedgerDirectoryError(MlpqError, OSError):    """An SQLite ledger's directory does not exist (only the default one is created)."""


def check_sqlite_directory(path: Path) -> None:
    """Create the default ledger's directory; any other ledger's must exist. Raises ``LedgerDirectoryError``."""
    if path.parent.is_dir():
        return
    if path == sqlite_file(default_database_url()):
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
    url = normalise_database_url(url)
    pool = {} if pooled else {"poolclass": NullPool}
    path = sqlite_file(url)
    if path is not None:
        check_sqlite_directory(path)
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


def read_only_sqlite_engine(path: Path) -> Engine:
    """An engine that reads the existing SQLite file ``path`` and can neither write to it nor create it."""
    return create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=NullPool,
                         connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

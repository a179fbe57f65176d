"""Which ledger a process works on: opening one (its schema checked) and reading its identity.

Queues are named by the identity, so a worker takes only its own ledger's jobs;
a worker whose ledger was deleted or replaced notices that the identity is gone
or changed (``ledger_change``).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, select

from mlpq.db.engine import check_sqlite_directory, make_engine, read_only_sqlite_engine
from mlpq.db.migrate import SchemaError, check_schema, prepare_schema
from mlpq.db.schema import LEDGER
from mlpq.errors import MlpqError
from mlpq.locations import is_default_ledger, sqlite_file
from mlpq.redact import shown


class LedgerChanged(MlpqError):
    """A worker's ledger was deleted or replaced (``cold``: its running jobs stop too), or its schema changed."""

    def __init__(self, reason: str, *, cold: bool) -> None:
        super().__init__(reason)
        self.cold = cold

    def report(self) -> str:
        return f"{self}: the worker stopped"


def open_ledger(url: str, *, pooled: bool = True) -> Engine:
    """An engine for a ledger at this mlpq's schema; only the default SQLite ledger is created when new.

    Another SQLite file's schema is checked read-only first, so a file that is
    not a ledger (empty, or another program's database) is never written to.
    Raises ``SchemaError`` (e.g. "run 'mlpq db upgrade'") and SQLAlchemy's
    errors when the database cannot be reached.
    """
    default = is_default_ledger(url)
    path = sqlite_file(url)
    if path is not None and not default:
        check_sqlite_ledger(path)
        return make_engine(url, pooled=pooled, existing=True)
    engine = make_engine(url, pooled=pooled)
    try:
        prepare_schema(engine, may_create=default)
    except Exception:
        engine.dispose()
        raise
    return engine


def check_sqlite_ledger(path: Path) -> None:
    """Raise ``SchemaError`` unless the SQLite file ``path`` is a ledger at this mlpq's schema; reads only."""
    check_sqlite_directory(path)
    if not path.exists():
        raise SchemaError(f"no ledger at {shown(str(path))}: run 'mlpq db upgrade' to create it")
    reader = read_only_sqlite_engine(path)
    try:
        with reader.connect() as connection:
            check_schema(connection)
    finally:
        reader.dispose()


def ledger_identity(connection: Connection) -> str | None:
    """The identity the ledger's schema was created with; ``None`` when it has none (e.g. an empty database)."""
    if not inspect(connection).has_table(LEDGER.name):
        return None
    return connection.execute(select(LEDGER.c.id)).scalar()


def require_identity(connection: Connection) -> str:
    """The ledger's identity; ``SchemaError`` if its schema has none."""
    identity = ledger_identity(connection)
    if identity is None:
        raise SchemaError("the ledger has no identity (its 'ledger' table is missing or empty)")
    return identity


def ledger_change(connection: Connection, identity: str) -> str | None:
    """Why the database behind ``connection`` is no longer ledger ``identity``; ``None`` while it is."""
    found = ledger_identity(connection)
    if found == identity:
        return None
    if found is None:
        return f"the ledger {identity} was replaced by a database without a ledger"
    return f"the ledger {identity} was replaced by ledger {found}"

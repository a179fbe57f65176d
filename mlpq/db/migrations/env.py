"""Alembic's environment for the ledger.

``mlpq.db.migrate`` hands over an open connection in ``config.attributes``; the
``alembic`` command (run from the repository, see alembic.ini) connects to
``MLPQ_DATABASE_URL`` instead. SQLite migrations run in batch mode (copy and
move tables) because SQLite's ALTER TABLE can do little. Either way all revisions run in one
transaction; SQLite's write lock (BEGIN IMMEDIATE) or, on PostgreSQL, an advisory lock lets one
process migrate while the others wait.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from mlpq.config import Settings
from mlpq.db.schema import metadata
from mlpq.db.engine import make_engine

POSTGRES_LOCK_KEY = 0x6D6C7071  # "mlpq"


def run_migrations(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    # transactional_ddl: SQLite's DDL is transactional, but Alembic would commit after each revision,
    # letting a process that read an older revision apply the next one again. One transaction
    # (BEGIN IMMEDIATE, see mlpq.db.engine) takes the write lock before the revision is read.
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=sqlite, transactional_ddl=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK_KEY})
        # The revision found under the lock: of processes upgrading together, only the first finds it old.
        context.config.attributes["before"] = context.get_context().get_current_revision()
        context.run_migrations()


def run_with_own_engine() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url
    engine = make_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("mlpq's migrations run against a database; --sql (offline mode) is not supported")
handed_over = context.config.attributes.get("connection")
if handed_over is not None:
    run_migrations(handed_over)
else:
    run_with_own_engine()

"""Alembic owns the ledger's schema: find its revision and upgrade it, from code or ``mlpq db upgrade``.

Workers upgrade the ledger when they start and the CLI on first use, so a new
database needs no setup step. The revisions live in ``mlpq/db/migrations``.
Alembic is imported only when a migration is due: a ledger already at
``HEAD`` costs one query.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0003_i11cluster"
"""The newest revision in ``migrations/versions`` (a test checks it against Alembic's)."""


class SchemaError(RuntimeError):
    """The ledger's schema cannot be brought to this mlpq's head revision."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for mlpq's revisions, running on ``connection`` if given."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    """The ledger's revision; ``None`` for a database that Alembic has not migrated."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_schema(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the ledger to ``revision``; returns its revision before and after (``None``: empty).

    Safe to call from many processes at once and when already there. Raises
    ``SchemaError`` for a ledger this mlpq cannot migrate (e.g. from a newer mlpq).
    """
    target = HEAD if revision == "head" else revision
    with engine.connect() as connection:
        before = current_revision(connection)
        if before == target:
            return before, before
        from alembic import command  # only when a migration is due
        from alembic.util import CommandError

        connection.rollback()  # end the read's transaction, so Alembic's own begins (and takes the lock)
        try:
            command.upgrade(alembic_config(connection), target)
        except CommandError as exc:
            raise SchemaError(f"cannot migrate the ledger from revision {before} to {target}: {exc} "
                              "(was it migrated by a newer mlpq?)") from exc
        connection.commit()
        return before, current_revision(connection)

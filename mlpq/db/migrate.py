"""Alembic owns the ledger's schema: check its revision, and upgrade it from ``mlpq db upgrade``.

Nothing migrates a ledger behind the user's back: every command and worker
checks that the schema is this mlpq's head (``check_schema``), and only a new
SQLite ledger at the default location is created implicitly. The revisions
live in ``mlpq/db/migrations``. Alembic is imported only when a migration is
due: checking a ledger costs one query.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from mlpq.errors import MlpqError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_DECLARATION = re.compile(r"""^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:["']([^"']+)["']|None)\s*$""",
                          re.MULTILINE)
"""A revision file's ``revision = "ID"`` or ``down_revision = "ID"`` (or ``None``), as Alembic's template writes."""


class SchemaError(MlpqError, RuntimeError):
    """The ledger's schema is not this mlpq's head revision, or cannot be brought to it."""


def revision_chain(versions: Path) -> tuple[str, ...]:
    """The revisions of the files in ``versions``, oldest first, as Alembic chains them by ``down_revision``.

    Read from the files' declarations rather than by Alembic's ``ScriptDirectory``, whose import would
    make every command slower; a test checks that both give the same chain. Raises ``SchemaError``
    unless the revisions form one unbranched chain.
    """
    parents: dict[str, str | None] = {}
    for path in sorted(versions.glob("*.py")):
        declared = dict(_DECLARATION.findall(path.read_text(encoding="utf-8")))
        if "revision" not in declared or "down_revision" not in declared:
            raise SchemaError(f"cannot read the revision and down_revision of migration {path.name}")
        parents[declared["revision"]] = declared["down_revision"] or None
    children = {parent: revision for revision, parent in parents.items()}
    chain = [children[None]] if None in children else []
    while chain[-1:] and chain[-1] in children:
        chain.append(children[chain[-1]])
    if len(chain) != len(parents):
        raise SchemaError(f"the migrations in {versions} do not form one chain of revisions")
    return tuple(chain)


REVISIONS = revision_chain(MIGRATIONS / "versions")
"""The revisions in ``migrations/versions``, oldest first."""
HEAD = REVISIONS[-1]


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


def schema_problem(revision: str | None) -> str | None:
    """Why a ledger at ``revision`` cannot be used by this mlpq; ``None`` when it is at the head."""
    if revision == HEAD:
        return None
    if revision is None:
        return "the ledger has no schema yet: run 'mlpq db upgrade'"
    if revision in REVISIONS:
        return f"the ledger's schema is {revision}, this mlpq knows {HEAD}: run 'mlpq db upgrade'"
    return (f"the ledger's schema is {revision}, this mlpq knows {HEAD}: "
            "it was migrated by a newer mlpq, install that version here")


def check_schema(connection: Connection) -> None:
    """Raise ``SchemaError`` unless the ledger is at this mlpq's head revision (one query)."""
    problem = schema_problem(current_revision(connection))
    if problem is not None:
        raise SchemaError(problem)


def prepare_schema(engine: Engine, *, may_create: bool) -> None:
    """Check the ledger's schema; if ``may_create`` and the database is empty, create the schema first.

    Raises ``SchemaError`` for a ledger not at the head (``mlpq db upgrade``
    migrates it on purpose) and SQLAlchemy's errors for an unreachable database.
    """
    with engine.connect() as connection:
        try:
            check_schema(connection)
            return
        except SchemaError:
            if not may_create or inspect(connection).get_table_names():
                raise
    upgrade_schema(engine)


def upgrade_schema(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the ledger to ``revision``; returns its revision before and after (``None``: empty).

    "Before" is what the migration found once it held the lock: of processes
    upgrading together, only the one that migrated reports the old revision.
    Safe to call from many processes at once and when already there. Raises
    ``SchemaError`` for a ledger this mlpq cannot migrate (e.g. from a newer mlpq).
    """
    target = HEAD if revision == "head" else revision
    with engine.connect() as connection:
        before = current_revision(connection)
        if before == target:
            return before, before
        if before is not None and before not in REVISIONS:
            raise SchemaError(str(schema_problem(before)))
        from alembic import command  # only when a migration is due
        from alembic.util import CommandError

        connection.rollback()  # end the read's transaction, so Alembic's own begins (and takes the lock)
        config = alembic_config(connection)
        try:
            command.upgrade(config, target)
        except CommandError as exc:
            raise SchemaError(f"cannot migrate the ledger from revision {before} to {target}: {exc}") from exc
        connection.commit()
        return config.attributes["before"], current_revision(connection)

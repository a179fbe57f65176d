"""``mlpq db upgrade`` and ``mlpq db current`` on SQLite and PostgreSQL, and the CLI migrating on first use."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from mlpq.db.migrate import HEAD, upgrade_schema
from mlpq.db.session import make_engine
from tests.api_cli.ledger_rows import mlpq


def with_password(url: str) -> str:
    """A PostgreSQL URL with a password (trust auth ignores it), to check it is never shown."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    return parsed.set(password="s3cret").render_as_string(hide_password=False)


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_db_upgrade_then_current(empty_url: str) -> None:
    url = with_password(empty_url)
    shown = make_url(url).render_as_string(hide_password=True)
    head = HEAD
    steps = [
        ("current", f"{shown}: no schema yet (head is {head}: mlpq db upgrade)"),
        ("upgrade", f"{shown}: upgraded from empty to revision {head} (head)"),
        ("upgrade", f"{shown}: already at revision {head} (head)"),
        ("current", f"{shown}: revision {head} (head)"),
    ]
    for command, expected in steps:
        result = mlpq("--database-url", url, "db", command)
        assert (result.exit_code, result.output.strip()) == (0, expected)
    assert "s3cret" not in shown and tables(url) == {"alembic_version", "jobs", "metrics"}


def test_db_current_says_when_the_ledger_is_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade_schema(engine, "0001")
    engine.dispose()
    result = mlpq("--database-url", url, "db", "current")
    assert result.output.strip() == f"{url}: revision 0001, head is {HEAD} (mlpq db upgrade)"


def test_any_command_migrates_an_empty_ledger_on_first_use(empty_url: str) -> None:
    result = mlpq("--database-url", empty_url, "results")
    assert result.exit_code == 0 and "no jobs yet" in result.output
    assert tables(empty_url) == {"alembic_version", "jobs", "metrics"}


def test_a_ledger_that_cannot_be_migrated_is_a_one_line_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('ffff')"))
    engine.dispose()
    for args in (["results"], ["db", "upgrade"]):
        result = mlpq("--database-url", url, *args)
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
        assert result.output.startswith(f"Error: cannot migrate the ledger from revision ffff to {HEAD}")


def test_db_upgrade_cannot_reach_the_database() -> None:
    result = mlpq("--database-url", "postgresql://postgres@127.0.0.1:1/none", "db", "upgrade")
    assert result.exit_code == 1 and result.output.startswith("Error: cannot reach the database")

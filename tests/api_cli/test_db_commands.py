"""``mlpq db upgrade`` and ``mlpq db current`` on SQLite and PostgreSQL; no other command migrates, except
that a new SQLite ledger at the default location is created on first use."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from mlpq.api_cli.cli import cli
from mlpq.db.migrate import HEAD, current_revision, upgrade_schema
from mlpq.db.engine import make_engine
from mlpq.db.schema import metadata
from tests import services
from tests.api_cli.ledger_rows import mlpq
from tests.services import run_mlpq

TABLES = {"alembic_version", *metadata.tables}


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
    assert "s3cret" not in shown and tables(url) == TABLES


def test_db_current_says_when_the_ledger_is_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade_schema(engine, "0001")
    engine.dispose()
    result = mlpq("--database-url", url, "db", "current")
    assert result.output.strip() == f"{url}: revision 0001, head is {HEAD} (mlpq db upgrade)"


def revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return current_revision(connection)
    finally:
        engine.dispose()


def at_revision(url: str, stored: str) -> str:
    """The ledger at ``url`` migrated to 0002, then labelled ``stored`` (e.g. a newer mlpq's revision)."""
    engine = make_engine(url)
    upgrade_schema(engine, "0002")
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": stored})
    engine.dispose()
    return url


NOT_MIGRATED = [
    (None, "Error: the ledger has no schema yet: run 'mlpq db upgrade'"),
    ("0002", f"Error: the ledger's schema is 0002, this mlpq knows {HEAD}: run 'mlpq db upgrade'"),
    ("ffff", f"Error: the ledger's schema is ffff, this mlpq knows {HEAD}: it was migrated by a newer mlpq, "
             "install that version here"),
]


@pytest.mark.parametrize(("stored", "message"), NOT_MIGRATED)
def test_commands_never_migrate_a_ledger_and_say_what_to_do(empty_url: str, stored: str | None,
                                                            message: str) -> None:
    url = at_revision(empty_url, stored) if stored else empty_url
    if url.startswith("sqlite"):
        Path(make_url(url).database).touch()  # an empty database (a missing file is 'no ledger at')
    for args in (["results"], ["submit", "himmelblau"], ["show", "abcd"], ["cancel", "abcd"]):
        result = mlpq("--database-url", url, *args)
        assert (result.exit_code, result.output.strip()) == (1, message), args
    assert revision(url) == stored and (stored or tables(url) == set())


def test_a_worker_does_not_start_on_a_ledger_that_is_not_migrated(empty_url: str) -> None:
    done = run_mlpq("worker", "--device", "cpu", env={**os.environ, "MLPQ_DATABASE_URL": at_revision(empty_url, "0002")})
    assert (done.returncode, done.stderr.strip()) == (1, NOT_MIGRATED[1][1])
    assert revision(empty_url) == "0002"


def test_a_new_ledger_at_the_default_location_is_created_on_first_use(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    monkeypatch.delenv("MLPQ_DATABASE_URL")
    ledger = tmp_path / "data-home" / "mlpq" / "mlpq.db"
    result = mlpq("results")
    assert result.exit_code == 0 and result.output.startswith("no jobs yet")
    assert revision(f"sqlite:///{ledger}") == HEAD and tables(f"sqlite:///{ledger}") == TABLES


def test_an_existing_ledger_at_the_default_location_is_not_migrated(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    monkeypatch.delenv("MLPQ_DATABASE_URL")
    (tmp_path / "data-home" / "mlpq").mkdir(parents=True)
    url = at_revision(f"sqlite:///{tmp_path / 'data-home' / 'mlpq' / 'mlpq.db'}", "0002")
    result = mlpq("results")
    assert (result.exit_code, result.output.strip()) == (1, NOT_MIGRATED[1][1])
    assert revision(url) == "0002"


def test_db_upgrade_refuses_a_ledger_from_a_newer_mlpq(tmp_path: Path) -> None:
    url = at_revision(f"sqlite:///{tmp_path / 'newer.db'}", "ffff")
    result = mlpq("--database-url", url, "db", "upgrade")
    assert (result.exit_code, result.output.strip()) == (1, NOT_MIGRATED[2][1])


@pytest.mark.parametrize("args", [["db", "upgrade"], ["results"]])
def test_an_unreachable_database_is_not_a_schema_problem(args: list[str]) -> None:
    result = mlpq("--database-url", "postgresql://postgres@127.0.0.1:1/none", *args)
    assert result.exit_code == 1 and result.output.startswith("Error: cannot reach the database: ")
    assert "schema" not in result.output and len(result.output.strip().splitlines()) == 1


IN_MEMORY = ["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true"]


@pytest.mark.parametrize("url", IN_MEMORY)
@pytest.mark.parametrize("given", ["option", "variable"])
@pytest.mark.parametrize("args", [["db", "upgrade"], ["db", "current"], ["results"], ["worker", "--device", "cpu"]])
def test_an_in_memory_database_is_refused_as_a_ledger(url: str, given: str, args: list[str]) -> None:
    options, env = (["--database-url", url], {}) if given == "option" else ([], {"MLPQ_DATABASE_URL": url})
    result = CliRunner().invoke(cli, [*options, *args], env=env)
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert "is an in-memory SQLite database, which cannot hold a ledger" in line and "sqlite:///PATH" in line


def test_a_psycopg2_url_means_psycopg_3() -> None:
    with services.fresh_postgres_database() as url:
        psycopg2 = make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
        upgraded = mlpq("--database-url", psycopg2, "db", "upgrade")
        assert (upgraded.exit_code, upgraded.output.strip()) == (
            0, f"{url}: upgraded from empty to revision {HEAD} (head)")  # shown as the driver it is
        listed = mlpq("--database-url", psycopg2, "results")
        assert listed.exit_code == 0 and listed.output.startswith("no jobs yet"), listed.output


def foreign_sqlite_database(path: Path) -> Path:
    """Another program's SQLite database, in SQLite's default (rollback journal) mode."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.execute("INSERT INTO notes VALUES ('keep me')")
    connection.commit()
    connection.close()
    return path


@pytest.mark.parametrize("content", ["empty", "foreign"])
@pytest.mark.parametrize("args", [["results"], ["submit", "himmelblau"], ["show", "abcd"],
                                  ["worker", "--device", "cpu"]])
def test_a_file_that_is_not_a_ledger_is_refused_and_left_as_it_was(tmp_path: Path, content: str,
                                                                   args: list[str]) -> None:
    (tmp_path / "ledgers").mkdir()
    path = tmp_path / "ledgers" / "ledger.db"
    path.touch() if content == "empty" else foreign_sqlite_database(path)
    before = path.read_bytes()
    # in a process of its own: a worker pins its device before torch is imported, which a test process has done
    result = run_mlpq("--database-url", f"sqlite:///{path}", *args, env=os.environ)
    assert (result.returncode, result.stderr.strip()) == (1, NOT_MIGRATED[0][1])
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == ["ledger.db"]


UPGRADE_AT_SIGNAL = """
import sys, time
from pathlib import Path
from mlpq.api_cli.cli import cli
Path(sys.argv[2]).touch()
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
cli.main(["--database-url", sys.argv[1], "db", "upgrade"])
"""


def test_of_upgrades_run_together_only_the_one_that_migrated_says_so(empty_url: str, tmp_path: Path) -> None:
    count, go = 6, tmp_path / "go"
    ready = [tmp_path / f"ready-{index}" for index in range(count)]
    processes = [subprocess.Popen([sys.executable, "-c", UPGRADE_AT_SIGNAL, empty_url, str(path), str(go)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for path in ready]
    deadline = time.monotonic() + 120
    while not all(path.exists() for path in ready) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    outputs = [process.communicate(timeout=120) for process in processes]
    lines = sorted(out.strip() for out, _err in outputs)
    shown = make_url(empty_url).render_as_string(hide_password=True)
    assert lines == sorted([f"{shown}: upgraded from empty to revision {HEAD} (head)",
                            *[f"{shown}: already at revision {HEAD} (head)"] * (count - 1)]), outputs

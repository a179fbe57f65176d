"""Alembic migrations on empty SQLite and PostgreSQL databases: to head, equal to the models, repeatable;
and the schema check every command and worker makes instead of migrating."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, column, insert, inspect, table, text
from sqlalchemy.exc import IntegrityError

from mlpq.db import jobs
from mlpq.db.ledger import ledger_identity
from mlpq.db.migrate import (HEAD, MIGRATIONS, REVISIONS, SchemaError, alembic_config, check_schema,
                             current_revision, prepare_schema, revision_chain, upgrade_schema)
from mlpq.db.schema import metadata
from mlpq.db.status import JobStatus
from mlpq.db.engine import make_engine

BASELINE = "0001"
TABLES = {"alembic_version", *metadata.tables}


@pytest.fixture
def engine(empty_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_url)
    yield engine
    engine.dispose()


def schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), metadata)


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return current_revision(connection)


def test_an_empty_database_is_migrated_to_head_and_matches_the_models(engine: Engine) -> None:
    assert revision(engine) is None and inspect(engine).get_table_names() == []
    assert upgrade_schema(engine) == (None, HEAD)
    assert revision(engine) == HEAD
    assert set(inspect(engine).get_table_names()) == TABLES
    assert schema_diff(engine) == []


def columns(engine: Engine) -> list[tuple[str, str, str, bool]]:
    inspector = inspect(engine)
    return [(name, c["name"], str(c["type"]), c["nullable"]) for name in sorted(inspector.get_table_names())
            for c in inspector.get_columns(name)]


def test_upgrading_again_changes_nothing(engine: Engine) -> None:
    upgrade_schema(engine)
    before = columns(engine)
    assert upgrade_schema(engine) == (HEAD, HEAD)
    assert columns(engine) == before and len(before) > 20
    assert schema_diff(engine) == []


def test_upgrading_from_the_first_revision_keeps_jobs_and_metrics(engine: Engine) -> None:
    assert upgrade_schema(engine, BASELINE) == (None, BASELINE)
    assert "rerun_of" not in {c["name"] for c in inspect(engine).get_columns("jobs")}
    jobs_table = table("jobs", *(column(name) for name in (
        "id", "kind", "status", "device", "params", "timeout_s", "created_at", "queued_at", "attempts",
        "cancel_requested")))
    with engine.begin() as connection:
        connection.execute(insert(jobs_table).values(
            id="a" * 32, kind="himmelblau", status="succeeded", device="cpu", params='{"steps": 10}',
            timeout_s=60, created_at=text("CURRENT_TIMESTAMP"), queued_at=text("CURRENT_TIMESTAMP"), attempts=1,
            cancel_requested=False))
        connection.execute(text("""INSERT INTO metrics (job_id, attempt, step, "values") """
                                """VALUES (:id, 1, 5, '{"f_best": 0.5}')"""), {"id": "a" * 32})

    assert upgrade_schema(engine) == (BASELINE, HEAD)
    assert schema_diff(engine) == []
    with engine.connect() as connection:
        [job] = jobs.list_jobs(connection)
        assert (job.id, job.status, job.params, job.rerun_of) == ("a" * 32, JobStatus.SUCCEEDED, {"steps": 10}, None)
        assert [(m.step, m.values) for m in jobs.latest_metrics(connection, job)] == [(5, {"f_best": 0.5})]


def test_revisions_are_alembics_from_oldest_to_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    assert [r.revision for r in reversed(list(script.walk_revisions()))] == list(REVISIONS)
    assert script.get_current_head() == HEAD == REVISIONS[-1]


def add_revision(versions: Path, revision: str, down_revision: str) -> None:
    (versions / f"{revision}.py").write_text(
        f'"""A later migration."""\n\nrevision = "{revision}"\ndown_revision = "{down_revision}"\n'
        "branch_labels = None\ndepends_on = None\n\n\ndef upgrade() -> None:\n    pass\n")


def test_a_new_revision_file_is_the_new_head_with_nothing_else_to_update(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    shutil.copytree(MIGRATIONS, tmp_path / "migrations")
    versions = tmp_path / "migrations" / "versions"
    add_revision(versions, "0099_later", HEAD)
    config = alembic_config()
    config.set_main_option("script_location", str(tmp_path / "migrations"))
    script = ScriptDirectory.from_config(config)
    assert revision_chain(versions) == (*REVISIONS, "0099_later") == tuple(
        r.revision for r in reversed(list(script.walk_revisions())))


def test_revisions_that_branch_are_refused(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    shutil.copytree(MIGRATIONS / "versions", versions)
    add_revision(versions, "0099_a", HEAD)
    add_revision(versions, "0099_b", HEAD)
    with pytest.raises(SchemaError, match="do not form one chain"):
        revision_chain(versions)


def test_each_new_ledger_gets_its_own_identity(engine: Engine, tmp_path: Path) -> None:
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    identities = []
    for ledger in (engine, other):
        upgrade_schema(ledger)
        with ledger.connect() as connection:
            identities.append(ledger_identity(connection))
            assert connection.execute(text("SELECT count(*) FROM ledger")).scalar() == 1
    other.dispose()
    assert all(identity and len(identity) == 12 for identity in identities) and identities[0] != identities[1]


def add_metric(engine: Engine, job_id: str, step: int) -> None:
    with engine.begin() as connection:
        connection.execute(text("""INSERT INTO metrics (job_id, attempt, step, "values") """
                                """VALUES (:id, 1, :step, '{"f": 1.0}')"""), {"id": job_id, "step": step})


def test_upgrading_keeps_one_copy_of_a_duplicated_metric_then_refuses_another(engine: Engine) -> None:
    upgrade_schema(engine, "0003_i11cluster")
    job_id = "a" * 32
    with engine.begin() as connection:  # the columns of revision 0003, not of this code's table
        connection.execute(text(
            "INSERT INTO jobs (id, kind, status, device, params, timeout_s, created_at, queued_at, attempts,"
            " cancel_requested) VALUES (:id, 'himmelblau', 'queued', 'cpu', '{}', 60, CURRENT_TIMESTAMP,"
            " CURRENT_TIMESTAMP, 0, FALSE)"), {"id": job_id})
    for step in (0, 10, 10, 20, 20, 20):  # what a retried commit could leave before the unique key
        add_metric(engine, job_id, step)

    assert upgrade_schema(engine) == ("0003_i11cluster", HEAD)
    assert schema_diff(engine) == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT step FROM metrics ORDER BY id")).scalars().all() == [0, 10, 20]
    with pytest.raises(IntegrityError):
        add_metric(engine, job_id, 10)


@pytest.mark.parametrize(("stored", "message"), [
    (None, "the ledger has no schema yet: run 'mlpq db upgrade'"),
    ("0002", f"the ledger's schema is 0002, this mlpq knows {HEAD}: run 'mlpq db upgrade'"),
    ("ffff", f"the ledger's schema is ffff, this mlpq knows {HEAD}: it was migrated by a newer mlpq, "
             "install that version here"),
])
def test_the_schema_check_says_what_to_do(engine: Engine, stored: str | None, message: str) -> None:
    if stored is not None:
        upgrade_schema(engine, "0002")
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": stored})
    with engine.connect() as connection, pytest.raises(SchemaError) as refused:
        check_schema(connection)
    assert str(refused.value) == message
    with pytest.raises(SchemaError, match=re.escape(message)):
        prepare_schema(engine, may_create=stored is not None)  # only an empty database is created, never migrated
    assert revision(engine) == stored


def test_prepare_creates_only_an_empty_database_it_may_create(engine: Engine) -> None:
    with pytest.raises(SchemaError, match="no schema yet"):
        prepare_schema(engine, may_create=False)
    assert inspect(engine).get_table_names() == []
    prepare_schema(engine, may_create=True)
    assert revision(engine) == HEAD
    prepare_schema(engine, may_create=False)  # at the head: nothing to do


def test_a_ledger_from_a_newer_mlpq_is_refused(engine: Engine) -> None:
    upgrade_schema(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(SchemaError, match="schema is ffff, this mlpq knows .*migrated by a newer mlpq"):
        upgrade_schema(engine)


UPGRADE_AT_SIGNAL = """
import sys, time
from pathlib import Path
from mlpq.db.migrate import upgrade_schema
from mlpq.db.engine import make_engine
engine = make_engine(sys.argv[1])
engine.connect().close()
Path(sys.argv[3]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.01)
print(*upgrade_schema(engine))
"""
PROCESSES = 8
READY_TIMEOUT_S = 120


def wait_until_ready(processes: list[subprocess.Popen[str]], ready: list[Path]) -> None:
    """Wait until every process has imported and connected (its ready file exists); fail if one exits first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not all(path.exists() for path in ready):
        exited = [process for process in processes if process.poll() is not None]
        assert not exited, [process.communicate()[1] for process in exited]
        assert time.monotonic() < deadline, f"only {sum(p.exists() for p in ready)} of {len(ready)} ready"
        time.sleep(0.05)


def test_processes_starting_together_migrate_once(empty_url: str, tmp_path: Path) -> None:
    signal = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(PROCESSES)]
    processes = [subprocess.Popen([sys.executable, "-c", UPGRADE_AT_SIGNAL, empty_url, str(signal), str(path)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for path in ready]
    try:
        wait_until_ready(processes, ready)
    finally:
        signal.touch()  # all start at once; after a failure, they end rather than wait forever
    outputs = [process.communicate(timeout=60) for process in processes]
    reported = sorted(out.strip() for out, _err in outputs)  # only the one that migrated found it empty
    assert reported == sorted([f"None {HEAD}", *[f"{HEAD} {HEAD}"] * (PROCESSES - 1)]), [err for _out, err in outputs]
    engine = make_engine(empty_url)
    assert schema_diff(engine) == []
    engine.dispose()

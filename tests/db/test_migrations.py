"""Alembic migrations on empty SQLite and PostgreSQL databases: to head, equal to the models, repeatable."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, column, insert, inspect, select, table, text
from sqlalchemy.orm import Session

from mlpq.db import jobs
from mlpq.db.migrate import HEAD, SchemaError, alembic_config, current_revision, upgrade_schema

BASELINE = "0001"
from mlpq.db.schema import Base, Job, JobStatus
from mlpq.db.session import make_engine


@pytest.fixture
def engine(empty_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_url)
    yield engine
    engine.dispose()


def schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return current_revision(connection)


def test_an_empty_database_is_migrated_to_head_and_matches_the_models(engine: Engine) -> None:
    assert revision(engine) is None and inspect(engine).get_table_names() == []
    assert upgrade_schema(engine) == (None, HEAD)
    assert revision(engine) == HEAD
    assert set(inspect(engine).get_table_names()) == {"alembic_version", "jobs", "metrics"}
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
    with Session(engine) as session:
        job = session.scalars(select(Job)).one()
        assert (job.id, job.status, job.params, job.rerun_of) == ("a" * 32, JobStatus.SUCCEEDED, {"steps": 10}, None)
        assert [(m.step, m.values) for m in jobs.latest_metrics(session, job)] == [(5, {"f_best": 0.5})]


def test_head_is_alembics_newest_revision() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD


def test_a_ledger_from_a_newer_mlpq_is_refused(engine: Engine) -> None:
    upgrade_schema(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(SchemaError, match="revision ffff"):
        upgrade_schema(engine)


UPGRADE_AT_SIGNAL = """
import sys, time
from pathlib import Path
from mlpq.db.migrate import upgrade_schema
from mlpq.db.session import make_engine
engine = make_engine(sys.argv[1])
while not Path(sys.argv[2]).exists():
    time.sleep(0.01)
print(upgrade_schema(engine)[1])
"""


def test_processes_starting_together_migrate_once(empty_url: str, tmp_path: Path) -> None:
    signal = tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-c", UPGRADE_AT_SIGNAL, empty_url, str(signal)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    time.sleep(3)  # let every process import and connect
    signal.touch()
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [out.strip() for out, _err in outputs] == [HEAD] * 4, [err for _out, err in outputs]
    engine = make_engine(empty_url)
    assert schema_diff(engine) == []
    engine.dispose()

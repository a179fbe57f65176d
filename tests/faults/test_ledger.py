"""Real workers and their ledger: each takes only its own ledger's jobs, and stops (exit 1) when the ledger
is deleted, replaced or migrated by a newer mlpq under it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mlpq.db.migrate import HEAD
from mlpq.db.status import JobStatus
from tests import services
from tests.conftest import migrate
from tests.faults import helpers
from tests.services import WorkerProcess

pytestmark = pytest.mark.integration
EXIT_TIMEOUT_S = 90


def exited(worker: WorkerProcess) -> int:
    """The worker's exit status, once it has stopped by itself."""
    try:
        return helpers.eventually(lambda: worker.process.poll() is not None and [worker.process.returncode],
                                  EXIT_TIMEOUT_S, "the worker to exit")[0]
    except AssertionError as exc:
        raise AssertionError(f"{exc}; its log:\n{worker.log()[-6000:]}") from None


def recreate_postgres_database(url: str) -> None:
    """Drop the database behind ``url`` and create an empty one of the same name, as a restore would."""
    name = make_url(url).database
    admin = create_engine(services.POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def set_revision(url: str, revision: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
    engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_worker_takes_only_its_own_ledgers_jobs(service_env: dict[str, str], tmp_path: Path) -> None:
    other_env = {**service_env, "MLPQ_DATABASE_URL": migrate(f"sqlite:///{tmp_path / 'other.db'}")}
    other = helpers.new_worker(other_env, tmp_path / "other.log")  # same Redis, another ledger
    try:
        mine = helpers.new_worker(service_env, tmp_path / "mine.log")
        try:
            submitted = [helpers.submit(service_env, "himmelblau", steps=10) for _ in range(4)]
            ended = [helpers.finished(service_env, job_id) for job_id in submitted]
            listed = {name: json.loads(services.run_mlpq("workers", "--json", env=env).stdout)
                      for name, env in (("mine", service_env), ("other", other_env))}
        finally:
            mine.stop()
    finally:
        other.stop()
    assert [job.status for job in ended] == [JobStatus.SUCCEEDED] * 4, mine.log()
    assert all(job.attempts == 1 for job in ended)
    assert not any(job_id in other.log() for job_id in submitted), other.log()
    assert {name: [w["queues"] for w in found] for name, found in listed.items()} == {
        "mine": [[services.queue_of("cpu", service_env)]], "other": [[services.queue_of("cpu", other_env)]]}
    assert services.queue_of("cpu", service_env) != services.queue_of("cpu", other_env)


def replace_ledger(database_url: str, how: str, tmp_path: Path) -> str:
    """Delete or replace the ledger under a worker; returns the pattern of the reason it should give."""
    identity = "the ledger [0-9a-f]{12} was replaced by"
    if how == "recreated":  # as a restore would: drop, create, migrate (a new identity)
        recreate_postgres_database(database_url)
        migrate(database_url)
        return f"{identity} (ledger [0-9a-f]{{12}}|a database without a ledger)"  # seen before or after migrating
    path = Path(make_url(database_url).database)
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    if how == "deleted":
        return re.escape(f"the ledger file {path} was deleted")
    os.replace(migrate(f"sqlite:///{tmp_path / 'new.db'}").removeprefix("sqlite:///"), path)
    return f"{identity} ledger [0-9a-f]{{12}}"


@pytest.mark.parametrize(("database_url", "how"), [
    ("sqlite", "deleted"), ("sqlite", "replaced"),
    ("postgresql", "recreated"),
], indirect=["database_url"])
def test_a_worker_stops_when_its_ledger_is_deleted_or_replaced(fault_env: dict[str, str], database_url: str,
                                                               how: str, tmp_path: Path) -> None:
    worker = helpers.new_worker(fault_env, tmp_path / "worker.log")
    try:
        running = helpers.submit_and_see_it_run(fault_env, "himmelblau", steps=1_000_000, log_every=1000)
        reason = replace_ledger(database_url, how, tmp_path)
        status = exited(worker)
    finally:
        worker.stop()
    log = worker.log()
    assert status == 1, log
    [stopped] = [line for line in log.splitlines() if "this worker stops consuming" in line]
    assert re.search(f"{reason}: this worker stops consuming", stopped)
    assert re.fullmatch(f"Error: {reason}: the worker stopped", log.rstrip().splitlines()[-1])
    assert "outage began" not in log.split(running)[0]  # no failed maintenance round before the job ran
    if how == "deleted":
        assert not Path(make_url(database_url).database).exists()  # not created again by the worker


def test_a_worker_stops_consuming_when_a_newer_mlpq_migrates_its_ledger(fault_env: dict[str, str],
                                                                         database_url: str, tmp_path: Path) -> None:
    worker = helpers.new_worker(fault_env, tmp_path / "worker.log")
    try:
        first = helpers.submit(fault_env, "himmelblau", steps=10)
        assert helpers.finished(fault_env, first).status is JobStatus.SUCCEEDED
        set_revision(database_url, "ffff")
        status = exited(worker)
    finally:
        worker.stop()
    message = (f"the ledger's schema is ffff, this mlpq knows {HEAD}: it was migrated by a newer mlpq, "
               "install that version here")
    log = worker.log()
    assert status == 1, log
    assert f"{message}: this worker stops consuming" in log
    assert log.rstrip().splitlines()[-1] == f"Error: {message}: the worker stopped"
    assert "outage began" not in log and "Traceback" not in log

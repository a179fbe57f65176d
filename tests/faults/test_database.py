"""The database goes away for longer than a lease mid-job: the run keeps its claim and the job ends once.

PostgreSQL is stopped (a private server); SQLite is locked by another writer.
Either way heartbeats cannot be written for 1.5 leases, and the reaper must not
take a live run's job when the database comes back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from mlpq.db.status import JobStatus
from mlpq.db.engine import make_engine
from tests.conftest import migrate
from tests.faults import helpers
from tests.faults.private_services import PrivatePostgres
from tests.jobkinds import fault_kind
from tests.jobkinds.fault_kind import Gate

pytestmark = pytest.mark.integration

LEASE_S = 10.0
OUTAGE_S = 1.5 * LEASE_S
LEASES = {"MLPQ_LEASE_SECONDS": str(LEASE_S), "MLPQ_HEARTBEAT_SECONDS": "2", "MLPQ_MAINTENANCE_SECONDS": "0.5"}
"""Heartbeats less often than maintenance rounds, so a reaper that does not wait wins the race at once."""


@contextmanager
def sqlite_locked(url: str) -> Iterator[None]:
    """Hold SQLite's write lock, as a long write by another process would."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:  # BEGIN IMMEDIATE
            connection.execute(text("UPDATE jobs SET attempts = attempts WHERE 0"))
            yield
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, object]]:
    """(database URL, a function that makes the database unusable for ``OUTAGE_S`` seconds)."""
    if request.param == "sqlite":
        url = migrate(f"sqlite:///{tmp_path / 'ledger.db'}")

        def lock() -> None:
            with sqlite_locked(url):
                time.sleep(OUTAGE_S)
        yield url, lock
    else:
        server = PrivatePostgres()
        server.start()

        def stop() -> None:
            server.stop()
            time.sleep(OUTAGE_S)
            server.start()
        try:
            yield migrate(server.url), stop
        finally:
            server.remove()


def renewed_after(env: dict[str, str], job_id: str, then: datetime | None) -> bool:
    """Whether the job's heartbeat is newer than ``then``, or it is no longer its first attempt's run."""
    job = helpers.job(env, job_id)
    return job.status is not JobStatus.RUNNING or job.attempts != 1 or job.heartbeat_at != then


def test_an_outage_longer_than_a_lease_runs_the_job_once(outage: tuple[str, object], broker_url: str, gate: Gate,
                                                          tmp_path: Path) -> None:
    url, make_outage = outage
    env = fault_kind.worker_env({**os.environ, "MLPQ_BROKER_URL": broker_url, "MLPQ_DATABASE_URL": url,
                                 "MLPQ_DATA_DIR": str(tmp_path / "data"), **LEASES})
    worker = helpers.new_worker(env, tmp_path / "worker.log")
    try:
        job_id, _pid = helpers.submit_and_hold(env, gate)
        make_outage()  # type: ignore[operator]
        # The run is still going when the database comes back: that is when a reaper could take it. It may go
        # on once its lease is renewed (or taken, which the checks below catch).
        stale = helpers.job(env, job_id).heartbeat_at
        helpers.eventually(lambda: renewed_after(env, job_id, stale), 60, "a heartbeat after the outage")
        gate.open()
        job = helpers.finished(env, job_id, timeout=120)
    finally:
        worker.stop()
    log = worker.log()
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 1, log
    assert "lease expired" not in log and "outcome dropped" not in log
    assert helpers.metric_count(env, job_id) == 2
    assert log.count(f"job {job_id} succeeded") == 1

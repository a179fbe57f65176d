"""Stopping a job as ``pruned`` (a tuning study's pruner): queued ones at once, running ones through their
heartbeat, lost ones by the reaper; on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update

from mlpq.db import jobs
from mlpq.db.engine import make_engine
from mlpq.db.jobs import CancelOutcome
from mlpq.db.schema import JOBS
from mlpq.db.status import JobStatus


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def running(engine: Engine) -> str:
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "himmelblau", {"steps": 10}, "cpu", timeout_s=60).id
        jobs.claim_job(connection, job_id, "host")
        jobs.add_metrics(connection, job_id, 1, [(1, {"f_best": 2.0})])
    return job_id


def test_a_queued_job_is_pruned_at_once(engine: Engine) -> None:
    with engine.begin() as connection:
        job = jobs.create_job(connection, "himmelblau", {"steps": 10}, "cpu", timeout_s=60)
        assert jobs.request_cancel(connection, job, JobStatus.PRUNED) is CancelOutcome.CANCELLED
        assert jobs.job_status(connection, job.id) is JobStatus.PRUNED
        assert jobs.claim_job(connection, job.id, "host") is None


def test_a_running_job_learns_from_its_heartbeat_to_end_pruned_and_keeps_its_metrics(engine: Engine) -> None:
    job_id = running(engine)
    with engine.begin() as connection:
        assert jobs.heartbeat(connection, job_id, 1) == jobs.Heartbeat(True, False, JobStatus.CANCELLED)
        job = jobs.find_job(connection, job_id)
        assert jobs.request_cancel(connection, job, JobStatus.PRUNED) is CancelOutcome.REQUESTED
        beat = jobs.heartbeat(connection, job_id, 1)
        assert beat.cancel_requested and beat.stop_as is JobStatus.PRUNED
        assert jobs.finish_job(connection, job_id, 1, beat.stop_as, error="pruned while running")
        assert jobs.job_status(connection, job_id) is JobStatus.PRUNED and JobStatus.PRUNED.terminal
        assert [m.step for m in jobs.latest_metrics(connection, jobs.find_job(connection, job_id))] == [1]
        assert jobs.list_jobs(connection, status=JobStatus.PRUNED)[0].id == job_id


def test_a_plain_cancel_still_ends_cancelled(engine: Engine) -> None:
    job_id = running(engine)
    with engine.begin() as connection:
        jobs.request_cancel(connection, jobs.find_job(connection, job_id))
        assert jobs.heartbeat(connection, job_id, 1).stop_as is JobStatus.CANCELLED


def test_a_lost_job_asked_to_be_pruned_ends_pruned(engine: Engine) -> None:
    job_id = running(engine)
    with engine.begin() as connection:
        jobs.request_cancel(connection, jobs.find_job(connection, job_id), JobStatus.PRUNED)
        connection.execute(update(JOBS).where(JOBS.c.id == job_id).values(heartbeat_at=jobs.db_now(timedelta(hours=-1))))
        assert jobs.requeue_expired(connection, lease=timedelta(seconds=60), max_attempts=3,
                                    grace=timedelta(seconds=1)) == []
        job = jobs.find_job(connection, job_id)
    assert job.status is JobStatus.PRUNED and job.error == "pruned (its worker was lost)"


def test_only_cancelled_or_pruned_end_a_stop(engine: Engine) -> None:
    job_id = running(engine)
    with engine.begin() as connection, pytest.raises(ValueError, match="cancelled or pruned"):
        jobs.request_cancel(connection, jobs.find_job(connection, job_id), JobStatus.FAILED)

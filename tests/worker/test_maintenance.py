"""The reaper's decisions on the real ledger and Redis, and reading task ids out of Redis (fakeredis: pure
parsing)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import fakeredis
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from mlpq.config import Settings
from mlpq.db import jobs
from mlpq.db.ledger import require_identity
from mlpq.db.schema import Job, JobStatus, utcnow
from mlpq.db.session import make_session_factory
from mlpq.worker.app import create_app
from mlpq.worker.maintenance import Maintenance, task_ids_waiting
from tests.messages import malformed, raw, task_message

LEASE = timedelta(seconds=30)


@pytest.fixture
def sessions(database_url: str) -> sessionmaker[Session]:
    return make_session_factory(database_url)


def running_job(sessions: sessionmaker[Session], *, silent_for: timedelta, attempts: int = 1,
                started_ago: timedelta = timedelta(0), cancel: bool = False, timeout_s: int = 600) -> str:
    """A running job whose last heartbeat is ``silent_for`` old."""
    with sessions.begin() as session:
        job_id = jobs.create_job(session, "himmelblau", {}, "cpu", timeout_s=timeout_s).id
        jobs.claim_job(session, job_id, "host")
        session.execute(update(Job).where(Job.id == job_id).values(
            heartbeat_at=utcnow() - silent_for, started_at=utcnow() - max(started_ago, silent_for),
            attempts=attempts, cancel_requested=cancel))
    return job_id


def test_the_reaper_requeues_fails_or_cancels_by_the_rules(sessions: sessionmaker[Session]) -> None:
    alive = running_job(sessions, silent_for=timedelta(seconds=2))
    lost = running_job(sessions, silent_for=timedelta(minutes=5))
    at_cap = running_job(sessions, silent_for=timedelta(minutes=5), attempts=3)
    overdue = running_job(sessions, silent_for=timedelta(minutes=5), started_ago=timedelta(hours=1), timeout_s=60)
    cancelled = running_job(sessions, silent_for=timedelta(minutes=5), cancel=True)
    with sessions.begin() as session:
        requeued = jobs.requeue_expired(session, lease=LEASE, max_attempts=3, grace=timedelta(seconds=30))
        assert [job.id for job in requeued] == [lost]
    with sessions() as session:
        state = {job_id: (job.status, job.error) for job_id in (alive, lost, at_cap, overdue, cancelled)
                 for job in [jobs.find_job(session, job_id)]}
    assert state == {
        alive: (JobStatus.RUNNING, None),
        lost: (JobStatus.QUEUED, None),
        at_cap: (JobStatus.FAILED, "worker lost: gave up after 3 attempts"),
        overdue: (JobStatus.FAILED, "time limit: exceeded 60 s"),
        cancelled: (JobStatus.CANCELLED, "cancelled (its worker was lost)"),
    }


def test_a_requeued_attempt_cannot_renew_or_finish(sessions: sessionmaker[Session]) -> None:
    job_id = running_job(sessions, silent_for=timedelta(minutes=5))
    with sessions.begin() as session:
        jobs.requeue_expired(session, lease=LEASE, max_attempts=3, grace=timedelta(seconds=30))
        assert jobs.claim_job(session, job_id, "rescuer").attempts == 2
        assert jobs.heartbeat(session, job_id, 1) == jobs.Heartbeat(owned=False, cancel_requested=False)
        assert not jobs.finish_job(session, job_id, 1, JobStatus.SUCCEEDED, result={})
        assert jobs.heartbeat(session, job_id, 2).owned
        assert jobs.finish_job(session, job_id, 2, JobStatus.SUCCEEDED, result={})


def test_task_ids_are_read_from_the_ledgers_queues_not_from_unacked_messages() -> None:
    client = fakeredis.FakeRedis()
    client.lpush("mlpq.ledger1.cpu", raw(task_message("a" * 32)), raw(task_message("b" * 32)))
    client.lpush("mlpq.ledger1.cuda:1", raw(task_message("c" * 32)), *malformed().values())  # malformed count for none
    client.lpush("celery", raw(task_message("d" * 32)))  # not one of mlpq's queues
    client.set("mlpq.ledger1.not-a-queue", "x")
    client.hset("unacked", "tag-1", json.dumps([task_message("e" * 32), "", "mlpq.ledger1.cpu"]))
    client.lpush("mlpq.ledger2.cpu", raw(task_message("f" * 32)))  # another ledger's
    assert task_ids_waiting(client, "ledger1") == {"a" * 32, "b" * 32, "c" * 32}  # "e" lost its consumer if queued


@pytest.mark.parametrize("check_waits", [False, True])
def test_a_round_whose_ledger_check_waited_does_not_reap(database_url: str, broker_url: str,
                                                          sessions: sessionmaker[Session], check_waits: bool,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger check held up by the database (SQLite's lock, a restart) means heartbeats were held up too."""
    settings = Settings.from_env({}, database_url=database_url, broker_url=broker_url, lease_seconds=3,
                                 heartbeat_seconds=0.5, maintenance_seconds=1)
    with sessions() as session:
        ledger = require_identity(session.connection())
    maintenance = Maintenance(create_app(settings), settings, "node", ledger)
    maintenance.connected_since = time.monotonic() - 60  # the database has answered promptly for a minute
    if check_waits:
        checked = maintenance.check_ledger
        monkeypatch.setattr(maintenance, "check_ledger",
                            lambda: (time.sleep(maintenance.slow_s * 1.5), checked())[1])
    silent = running_job(sessions, silent_for=timedelta(minutes=5))
    maintenance.tick()
    with sessions() as session:
        status = jobs.find_job(session, silent).status
    assert status is (JobStatus.RUNNING if check_waits else JobStatus.QUEUED)

"""The reaper's decisions on the real ledger and Redis, and reading task ids out of Redis (fakeredis: pure
parsing)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import fakeredis
import pytest
import redis
from sqlalchemy import Engine, update

from mlpq.config import Settings
from mlpq.db import jobs
from mlpq.db.ledger import require_identity
from mlpq.db.clock import utcnow
from mlpq.db.schema import JOBS
from mlpq.db.status import JobStatus
from mlpq.db.engine import make_engine
from mlpq.devices import parse_device
from mlpq import messages
from mlpq.worker.app import create_app
from mlpq.worker.maintenance import Maintenance, task_ids_waiting
from tests.messages import malformed, raw, task_message

LEASE = timedelta(seconds=30)


@pytest.fixture
def engine(database_url: str) -> Engine:
    return make_engine(database_url)


def running_job(engine: Engine, *, silent_for: timedelta, attempts: int = 1,
                started_ago: timedelta = timedelta(0), cancel: bool = False, timeout_s: int = 600) -> str:
    """A running job whose last heartbeat is ``silent_for`` old."""
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "himmelblau", {}, "cpu", timeout_s=timeout_s).id
        jobs.claim_job(connection, job_id, "host")
        connection.execute(update(JOBS).where(JOBS.c.id == job_id).values(
            heartbeat_at=utcnow() - silent_for, started_at=utcnow() - max(started_ago, silent_for),
            attempts=attempts, cancel_requested=cancel))
    return job_id


def test_the_reaper_requeues_fails_or_cancels_by_the_rules(engine: Engine) -> None:
    alive = running_job(engine, silent_for=timedelta(seconds=2))
    lost = running_job(engine, silent_for=timedelta(minutes=5))
    at_cap = running_job(engine, silent_for=timedelta(minutes=5), attempts=3)
    overdue = running_job(engine, silent_for=timedelta(minutes=5), started_ago=timedelta(hours=1), timeout_s=60)
    cancelled = running_job(engine, silent_for=timedelta(minutes=5), cancel=True)
    with engine.begin() as connection:
        requeued = jobs.requeue_expired(connection, lease=LEASE, max_attempts=3, grace=timedelta(seconds=30))
        assert [job.id for job in requeued] == [lost]
    with engine.connect() as connection:
        state = {job_id: (job.status, job.error) for job_id in (alive, lost, at_cap, overdue, cancelled)
                 for job in [jobs.find_job(connection, job_id)]}
    assert state == {
        alive: (JobStatus.RUNNING, None),
        lost: (JobStatus.QUEUED, None),
        at_cap: (JobStatus.FAILED, "worker lost: gave up after 3 attempts"),
        overdue: (JobStatus.FAILED, "time limit: exceeded 60 s"),
        cancelled: (JobStatus.CANCELLED, "cancelled (its worker was lost)"),
    }


def test_a_requeued_attempt_cannot_renew_or_finish(engine: Engine) -> None:
    job_id = running_job(engine, silent_for=timedelta(minutes=5))
    with engine.begin() as connection:
        jobs.requeue_expired(connection, lease=LEASE, max_attempts=3, grace=timedelta(seconds=30))
        assert jobs.claim_job(connection, job_id, "rescuer").attempts == 2
        assert jobs.heartbeat(connection, job_id, 1) == jobs.Heartbeat(owned=False, cancel_requested=False)
        assert not jobs.finish_job(connection, job_id, 1, JobStatus.SUCCEEDED, result={})
        assert jobs.heartbeat(connection, job_id, 2).owned
        assert jobs.finish_job(connection, job_id, 2, JobStatus.SUCCEEDED, result={})


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
                                                          engine: Engine, check_waits: bool,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger check held up by the database (SQLite's lock, a restart) means heartbeats were held up too."""
    settings = Settings.from_env({}, database_url=database_url, broker_url=broker_url, lease_seconds=3,
                                 heartbeat_seconds=0.5, maintenance_seconds=1)
    with engine.connect() as connection:
        ledger = require_identity(connection)
    maintenance = Maintenance(create_app(settings), settings, "node", ledger)
    maintenance.connected_since = time.monotonic() - 60  # the database has answered promptly for a minute
    if check_waits:
        checked = maintenance.check_ledger
        monkeypatch.setattr(maintenance, "check_ledger",
                            lambda: (time.sleep(maintenance.slow_s * 1.5), checked())[1])
    silent = running_job(engine, silent_for=timedelta(minutes=5))
    maintenance.tick()
    with engine.connect() as connection:
        status = jobs.find_job(connection, silent).status
    assert status is (JobStatus.RUNNING if check_waits else JobStatus.QUEUED)


def test_a_requeued_job_goes_back_on_its_queue_as_submit_publishes_it(database_url: str, broker_url: str,
                                                                       engine: Engine) -> None:
    settings = Settings.from_env({}, database_url=database_url, broker_url=broker_url, lease_seconds=3,
                                 heartbeat_seconds=0.5, maintenance_seconds=1)
    with engine.connect() as connection:
        ledger = require_identity(connection)
    maintenance = Maintenance(create_app(settings), settings, "node", ledger)
    maintenance.connected_since = time.monotonic() - 60  # the database has answered promptly for a minute
    silent = running_job(engine, silent_for=timedelta(minutes=5))
    maintenance.tick()
    with engine.connect() as connection:
        job = jobs.find_job(connection, silent)
    [published] = [json.loads(raw) for raw in redis.Redis.from_url(broker_url).lrange(parse_device("cpu").queue(ledger),
                                                                                      0, -1)]
    expected = messages.task_message(job, ledger, settings.leases.hard_limit_grace_s)
    for message in (published, expected):
        message["properties"].pop("delivery_tag")
    assert published == expected


def test_a_job_that_ends_without_its_worker_loses_its_checkpoint(database_url: str, broker_url: str,
                                                                 engine: Engine) -> None:
    from mlpq.db.artifacts import ArtifactStore

    settings = Settings.from_env({}, database_url=database_url, broker_url=broker_url, lease_seconds=3,
                                 heartbeat_seconds=0.5, maintenance_seconds=1, max_attempts=1)
    with engine.connect() as connection:
        ledger = require_identity(connection)
    maintenance = Maintenance(create_app(settings), settings, "node", ledger)
    maintenance.connected_since = time.monotonic() - 60  # the database has answered promptly for a minute
    lost, alive = running_job(engine, silent_for=timedelta(minutes=5)), running_job(engine, silent_for=timedelta(0))
    store = ArtifactStore(engine, None, 1 << 20)
    for job_id in (lost, alive):
        store.put(job_id, 1, "checkpoint", b"state", role="checkpoint")
    maintenance.tick()
    with engine.connect() as connection:
        assert jobs.find_job(connection, lost).error == "worker lost: gave up after 1 attempts"
    assert store.find(lost, "checkpoint", role="checkpoint") is None
    assert store.find(alive, "checkpoint", role="checkpoint") is not None  # still running: kept

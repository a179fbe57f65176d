"""Workers die, messages repeat, jobs hang: every job still ends exactly once, proven from the ledger."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import redis

from mlpq.db.status import JobStatus
from mlpq import messages
from tests.faults import helpers
from tests.jobkinds import fault_kind
from tests.jobkinds.fault_kind import Gate
from tests.services import WorkerProcess, queue_of

pytestmark = pytest.mark.integration


@pytest.fixture
def fault_env(fault_env: dict[str, str]) -> dict[str, str]:
    """The faults' environment, for workers that also know the test-only ``fault`` kind: its ``block`` jobs wait
    at a gate, so a test interrupts them at a known point, however fast the machine."""
    return fault_kind.worker_env(fault_env)


@pytest.fixture
def worker(fault_env: dict[str, str], tmp_path: Path) -> WorkerProcess:
    process = helpers.new_worker(fault_env, tmp_path / "worker.log")
    yield process
    process.stop()


def test_a_killed_pool_process_reruns_the_job_once(worker: WorkerProcess, fault_env: dict[str, str],
                                                   gate: Gate) -> None:
    job_id, pid = helpers.submit_and_hold(fault_env, gate)
    assert helpers.pool_children(worker) == [pid]
    os.kill(pid, signal.SIGKILL)
    helpers.eventually(lambda: helpers.job(fault_env, job_id).attempts == 2, 60, "a second attempt")
    gate.open()

    job = helpers.finished(fault_env, job_id)
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 2 and job.result["pid"] != pid
    assert helpers.metric_count(fault_env, job_id) == 2  # the second attempt's, complete
    assert worker.log().count(f"job {job_id} succeeded") == 1


def test_a_killed_worker_is_replaced_and_its_job_completed(fault_env: dict[str, str], gate: Gate,
                                                           tmp_path: Path) -> None:
    first = helpers.new_worker(fault_env, tmp_path / "first.log")
    try:
        job_id, _pid = helpers.submit_and_hold(fault_env, gate)
    finally:
        helpers.kill_worker(first)
    assert helpers.job(fault_env, job_id).status is JobStatus.RUNNING  # nobody has noticed yet
    gate.open()  # the next attempt runs through

    second = helpers.new_worker(fault_env, tmp_path / "second.log")
    try:
        job = helpers.finished(fault_env, job_id)
    finally:
        second.stop()
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 2
    assert "lease expired, requeued: " + job_id in second.log()
    assert second.log().count(f"job {job_id} succeeded") == 1


def test_a_frozen_worker_loses_its_job_and_cannot_record_it(fault_env: dict[str, str], gate: Gate,
                                                            tmp_path: Path) -> None:
    frozen = helpers.new_worker(fault_env, tmp_path / "frozen.log")
    rescuer = None
    try:
        job_id, _pid = helpers.submit_and_hold(fault_env, gate)
        os.killpg(frozen.process.pid, signal.SIGSTOP)
        rescuer = helpers.new_worker(fault_env, tmp_path / "rescuer.log")
        helpers.eventually(lambda: helpers.job(fault_env, job_id).attempts == 2, 60, "a second attempt")
        os.killpg(frozen.process.pid, signal.SIGCONT)  # the first attempt wakes up, still running its job
        helpers.eventually(lambda: "lost its lease" in frozen.log(), 30, "the frozen run to notice")
        gate.open()  # only now may the second attempt end
        job = helpers.finished(fault_env, job_id)
    finally:
        os.killpg(frozen.process.pid, signal.SIGCONT)
        frozen.stop()
        if rescuer is not None:
            rescuer.stop()
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 2
    assert f"job {job_id} succeeded" not in frozen.log()
    assert rescuer.log().count(f"job {job_id} succeeded") == 1
    helpers.eventually(lambda: [a.outcome for a in helpers.client(fault_env).get(job_id).attempts] == [
        "lease lost", "succeeded"], 30, "the frozen attempt to say it was alive")  # not "worker lost"


def test_a_duplicate_delivery_runs_once(worker: WorkerProcess, fault_env: dict[str, str]) -> None:
    api = helpers.client(fault_env)
    job_id = helpers.submit(fault_env, "himmelblau", steps=200, log_every=50)
    with messages.connect(fault_env["MLPQ_BROKER_URL"]) as broker:  # the same id twice more
        messages.publish(broker, api.ledger, [api.get(job_id).job] * 2, [],
                         grace_s=api.settings.leases.hard_limit_grace_s)
    job = helpers.finished(fault_env, job_id)
    helpers.eventually(lambda: worker.log().count(f"job {job_id} is not queued") == 2, 30, "the duplicates")
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 1
    assert worker.log().count(f"job {job_id} (himmelblau) attempt") == 1
    assert helpers.metric_count(fault_env, job_id) == 4


def test_a_job_past_its_time_limit_fails_with_that_reason(worker: WorkerProcess, fault_env: dict[str, str],
                                                          gate: Gate) -> None:
    job_id, _pid = helpers.submit_and_hold(fault_env, gate, timeout_s=2)  # the gate never opens
    job = helpers.finished(fault_env, job_id, timeout=60)
    assert job.status is JobStatus.FAILED and job.error == "time limit: exceeded 2 s"
    assert helpers.metric_count(fault_env, job_id) == 1  # what it reported before the limit is kept
    assert (job.finished_at - job.started_at).total_seconds() < 10


def reserve_and_die(env: dict[str, str]) -> None:
    """Leave the state a consumer killed between reserving and claiming leaves: its message taken off the queue
    into kombu's ``unacked`` hash (restored only after the 48 h visibility timeout), the job still queued."""
    client = redis.Redis.from_url(env["MLPQ_BROKER_URL"])
    queue = queue_of("cpu", env)
    message = json.loads(client.rpop(queue))
    tag = message["properties"]["delivery_tag"]
    client.hset("unacked", tag, json.dumps([message, "", queue]))
    client.zadd("unacked_index", {tag: time.time()})


def test_a_job_reserved_by_a_killed_worker_runs_within_two_leases(fault_env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    job_id = helpers.submit(fault_env, "himmelblau", steps=100, log_every=50)
    reserve_and_die(fault_env)
    worker = helpers.new_worker(fault_env, tmp_path / "worker.log")
    try:
        job = helpers.finished(fault_env, job_id, timeout=60)
    finally:
        worker.stop()
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 1
    assert "queued but missing from the broker, re-published: " + job_id in worker.log()


def test_a_job_that_ignores_its_soft_time_limit_is_killed_at_the_hard_one(fault_env: dict[str, str], gate: Gate,
                                                                          tmp_path: Path) -> None:
    # A lease longer than the hard limit (6 + 2 s): a frozen run whose lease expired first would rightly be
    # requeued as lost, and its second attempt would end at its own soft limit.
    env = {**fault_env, "MLPQ_HARD_LIMIT_GRACE_SECONDS": "2", "MLPQ_LEASE_SECONDS": "10"}
    worker = helpers.new_worker(env, tmp_path / "worker.log")
    try:
        job_id, pid = helpers.submit_and_hold(env, gate, timeout_s=6)
        os.kill(pid, signal.SIGSTOP)  # stuck: the soft limit's signal is never handled
        helpers.eventually(lambda: "Hard time limit (8.0s) exceeded" in worker.log(), 30, "the hard kill")
        job = helpers.finished(env, job_id, timeout=30)
        after = helpers.submit(env, "himmelblau", steps=10)
        assert helpers.finished(env, after).status is JobStatus.SUCCEEDED  # in a new pool process
    finally:
        worker.stop()
    assert job.status is JobStatus.FAILED and job.error == "time limit: exceeded 6 s" and job.attempts == 1

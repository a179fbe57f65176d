"""Redis restarts and forged messages: jobs still end, workers keep consuming, pickle is refused."""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import uuid
from pathlib import Path

import pytest
import redis

from mlpq.db.status import JobStatus
from tests import messages
from tests.faults import helpers
from tests.faults.private_services import PrivateRedis
from tests.services import WorkerProcess, mlpq_command, queue_of, run_mlpq

pytestmark = pytest.mark.integration


def test_jobs_survive_a_redis_restart(private_redis: PrivateRedis, fault_env: dict[str, str],
                                      tmp_path: Path) -> None:
    env = {**fault_env, "MLPQ_BROKER_URL": private_redis.url}
    worker = helpers.new_worker(env, tmp_path / "worker.log")
    try:
        running = helpers.submit(env, "mnist", dataset="mnist-sample", epochs=4, batch_size=4, seed=1)
        queued = [helpers.submit(env, "himmelblau", steps=500, log_every=100) for _ in range(3)]
        helpers.eventually(lambda: helpers.job(env, running).status is JobStatus.RUNNING, 60, "the first job")
        private_redis.stop()  # no persistence: the queued messages are gone
        private_redis.start()
        after = helpers.submit(env, "himmelblau", steps=500, log_every=100)
        ended = [helpers.finished(env, job_id, timeout=120) for job_id in [running, *queued, after]]
    finally:
        worker.stop()
    assert [job.status for job in ended] == [JobStatus.SUCCEEDED] * 5, worker.log()
    assert "queued but missing from the broker, re-published" in worker.log()


def test_a_pickled_message_is_refused_and_the_worker_goes_on(fault_env: dict[str, str], tmp_path: Path) -> None:
    worker: WorkerProcess = helpers.new_worker(fault_env, tmp_path / "worker.log")
    try:
        job_id = helpers.submit(fault_env, "himmelblau", steps=10)
        queue = queue_of("cpu", fault_env)
        redis.Redis.from_url(fault_env["MLPQ_BROKER_URL"]).lpush(queue, json.dumps(pickled_message(job_id, queue)))
        helpers.eventually(lambda: "application/x-python-serialize" in worker.log(), 30, "the refusal")
        assert helpers.finished(fault_env, job_id).status is JobStatus.SUCCEEDED  # through its own JSON message
        after = helpers.submit(fault_env, "himmelblau", steps=10)
        assert helpers.finished(fault_env, after).status is JobStatus.SUCCEEDED
        assert worker.process.poll() is None
    finally:
        worker.stop()
    assert f"dead-lettered a malformed message from {queue}: content type 'application/x-python-serialize'" \
        in worker.log()
    assert helpers.job(fault_env, job_id).attempts == 1


def test_malformed_messages_are_dead_lettered_and_the_worker_goes_on(fault_env: dict[str, str],
                                                                     tmp_path: Path) -> None:
    """``redis-cli lpush mlpq.cpu 'not json at all'`` and its kin used to stop the worker that took them."""
    malformed = messages.malformed()
    client, queue = redis.Redis.from_url(fault_env["MLPQ_BROKER_URL"]), queue_of("cpu", fault_env)
    client.lpush(queue, *malformed.values())  # waiting before the worker starts, as after a restore
    worker = helpers.new_worker(fault_env, tmp_path / "worker.log")
    try:
        job_id = helpers.submit(fault_env, "himmelblau", steps=10)
        assert helpers.finished(fault_env, job_id).status is JobStatus.SUCCEEDED
        client.lpush(queue, "not json at all")  # and one while it runs
        helpers.eventually(lambda: worker.log().count("dead-lettered") == len(malformed) + 1, 30, "the last one")
        assert worker.process.poll() is None
    finally:
        worker.stop()
    logged = [line for line in worker.log().splitlines() if "dead-lettered a malformed message" in line]
    assert len(logged) == len(malformed) + 1 and client.llen(queue) == 0
    listed = run_mlpq("dead-letters", "--json", "--limit", "100", env=fault_env)
    assert listed.returncode == 0, listed.stderr
    letters = json.loads(listed.stdout)
    # popped oldest first, listed newest first
    assert [letter["message"] for letter in letters] == ["not json at all", *reversed(malformed.values())]
    for letter, kind in zip(letters[1:], reversed(malformed)):
        assert messages.REASONS[kind] in letter["reason"] and letter["queue"] == queue
        assert sum(letter["reason"] in line for line in logged) >= 1


def test_a_worker_that_stops_on_an_error_exits_non_zero(fault_env: dict[str, str], tmp_path: Path) -> None:
    redis.Redis.from_url(fault_env["MLPQ_BROKER_URL"]).set(queue_of("cpu", fault_env), "not a list")
    with open(tmp_path / "worker.log", "wb") as log:
        done = subprocess.run(mlpq_command("worker", "--device", "cpu"), env=fault_env, stdout=log,
                              stderr=subprocess.STDOUT, timeout=120)
    assert done.returncode == 1
    assert "Unrecoverable error" in (tmp_path / "worker.log").read_text()
    assert "Error: the worker stopped on an error (exit 1)" in (tmp_path / "worker.log").read_text()


def pickled_message(job_id: str, queue: str) -> dict[str, object]:
    """A Celery message as kombu's Redis transport stores it, its body pickled instead of JSON."""
    return {
        "body": base64.b64encode(pickle.dumps(((job_id,), {}, {}))).decode(), "content-encoding": "binary",
        "content-type": "application/x-python-serialize",
        "headers": {"lang": "py", "task": "mlpq.run_job", "id": str(uuid.uuid4())},
        "properties": {"delivery_tag": str(uuid.uuid4()), "body_encoding": "base64",
                       "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0},
    }

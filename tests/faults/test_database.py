"""PostgreSQL goes away while a job finishes: the worker retries its writes and the job ends once."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlpq.db.schema import JobStatus
from tests.faults import helpers
from tests.faults.private_services import PrivatePostgres

pytestmark = pytest.mark.integration


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    yield server
    server.remove()


def test_a_result_written_while_postgres_is_down_is_retried(private_postgres: PrivatePostgres, broker_url: str,
                                                           tmp_path: Path) -> None:
    env = {**os.environ, "MLPQ_BROKER_URL": broker_url, "MLPQ_DATABASE_URL": private_postgres.url,
           "MLPQ_LEASE_SECONDS": "60", "MLPQ_HEARTBEAT_SECONDS": "0.5"}
    worker = helpers.new_worker(env, tmp_path / "worker.log")
    try:
        job_id = helpers.submit_and_see_it_run(env, "mnist", dataset="mnist-sample", epochs=3, batch_size=4, seed=2)
        private_postgres.stop()
        helpers.eventually(lambda: "ledger write failed, retrying" in worker.log(), 60, "a failed write")
        time.sleep(2)
        private_postgres.start()
        job = helpers.finished(env, job_id)
    finally:
        worker.stop()
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 1
    assert helpers.metric_count(env, job_id) == 3
    assert worker.log().count(f"job {job_id} succeeded") == 1

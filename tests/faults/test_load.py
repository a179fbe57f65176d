"""Two workers, 200 short jobs, one SQLite file: every job ends, once, and nothing is locked out."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpq.api_cli.api import JobRequest
from mlpq.db.status import JobStatus
from tests.faults import helpers

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

JOBS = 200


def test_two_workers_drain_200_jobs_on_sqlite(fault_env: dict[str, str], tmp_path: Path) -> None:
    workers = [helpers.new_worker(fault_env, tmp_path / f"worker{i}.log") for i in range(2)]
    api = helpers.client(fault_env)
    try:
        submitted = api.submit_many([JobRequest("himmelblau", {"steps": 20, "log_every": 10})] * JOBS)
        ids = {job.id for job in submitted}
        helpers.eventually(
            lambda: all(j.status.terminal for j in api.list(limit=JOBS)), 300, "all jobs to end", interval=1)
    finally:
        for worker in workers:
            worker.stop()
    jobs = api.list(limit=JOBS + 1)
    logs = "".join(worker.log() for worker in workers)
    assert {job.id for job in jobs} == ids
    assert [job.status for job in jobs] == [JobStatus.SUCCEEDED] * JOBS
    assert all(job.attempts == 1 for job in jobs)
    assert all(logs.count(f"job {job_id} succeeded") == 1 for job_id in ids)
    assert all(worker.log().count(" succeeded") > 0 for worker in workers)  # both took part
    assert "database is locked" not in logs

"""A worker whose clock is five minutes behind, beside a normal one on one PostgreSQL ledger.

Leases are stamped and compared by the database's clock, so the skewed worker's
heartbeats look as fresh as anyone's: no job is requeued, none runs twice, and
durations are the database's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlpq.db.status import JobStatus
from tests.faults import helpers

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
              pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime (scripts/services.sh)")]

JOBS = 12
SKEW = ["env", "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_FORCE_MONOTONIC_FIX=0", "faketime", "-f", "-300s"]
"""Wall-clock skew only. Under libfaketime's defaults Python's timed waits misbehave (they never return with a
faked monotonic clock, and a thread waiting for the GIL waits seconds), which is the tool's, not a host's."""


def test_a_worker_five_minutes_behind_loses_no_lease(fault_env: dict[str, str], tmp_path: Path) -> None:
    skewed = helpers.new_worker(fault_env, tmp_path / "skewed.log", wrapper=SKEW)
    normal = helpers.new_worker(fault_env, tmp_path / "normal.log")
    try:
        ids = [helpers.submit(fault_env, "himmelblau", steps=100_000, log_every=20_000) for _ in range(JOBS)]
        ended = [helpers.finished(fault_env, job_id, timeout=240) for job_id in ids]
    finally:
        skewed.stop()
        normal.stop()
    logs = skewed.log() + normal.log()
    assert [job.status for job in ended] == [JobStatus.SUCCEEDED] * JOBS, logs
    assert [job.attempts for job in ended] == [1] * JOBS
    assert "lease expired" not in logs
    assert all(logs.count(f"job {job_id} succeeded") == 1 for job_id in ids)
    assert " succeeded" in skewed.log() and " succeeded" in normal.log()  # both took part
    durations = [(job.finished_at - job.started_at).total_seconds() for job in ended]
    assert all(0 < seconds < 60 for seconds in durations), durations

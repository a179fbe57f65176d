"""Cancelling queued, running and finished jobs through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpq.db.status import JobStatus
from tests.faults import helpers
from tests.services import run_mlpq

pytestmark = pytest.mark.integration


def test_cancel_queued_running_and_finished(fault_env: dict[str, str], tmp_path: Path) -> None:
    queued = helpers.submit(fault_env, "himmelblau", steps=100)
    done = run_mlpq("cancel", queued[:8], env=fault_env)
    assert done.returncode == 0 and done.stdout.strip() == f"{queued} cancelled"

    worker = helpers.new_worker(fault_env, tmp_path / "worker.log")
    try:
        running = helpers.submit_and_see_it_run(fault_env, "mnist", dataset="mnist-sample", epochs=20, batch_size=4,
                                                seed=5)
        done = run_mlpq("cancel", running, env=fault_env)
        assert done.returncode == 0 and "it stops at its next step or epoch" in done.stdout
        stopped = helpers.finished(fault_env, running, timeout=60)
        finished = helpers.submit(fault_env, "himmelblau", steps=10)
        helpers.finished(fault_env, finished)
    finally:
        worker.stop()

    never_started = helpers.job(fault_env, queued)
    assert never_started.status is JobStatus.CANCELLED and never_started.started_at is None
    assert f"job {queued} (himmelblau) attempt" not in worker.log()
    assert stopped.status is JobStatus.CANCELLED and stopped.error == "cancelled while running"
    assert 1 <= helpers.metric_count(fault_env, running) < 20  # partial metrics are kept

    done = run_mlpq("cancel", finished, "ffff0000", env=fault_env)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"Error: job {finished} already succeeded", "Error: no job ffff0000"]
    assert helpers.job(fault_env, finished).status is JobStatus.SUCCEEDED

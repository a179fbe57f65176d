"""``execute_job`` called directly against a real SQLite ledger: outcomes, failure reasons, duplicates."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text, update

from mlpq.db import jobs
from mlpq.db.schema import JOBS
from mlpq.db.status import JobStatus
from mlpq.db.engine import make_engine
from mlpq import kinds
from mlpq.devices import Device
from mlpq.models.context import RunContext
from mlpq.worker.execute import execute_job, run_spec
from mlpq.worker.lease import Lease, LeaseKeeper

CPU = Device("cpu")


@pytest.fixture
def engine(sqlite_url: str) -> Engine:
    return make_engine(sqlite_url)


def add_job(engine: Engine, kind: str, params: dict[str, Any], device: str = "cpu") -> str:
    with engine.begin() as connection:
        return jobs.create_job(connection, kind, params, device, timeout_s=60).id


def run(engine: Engine, job_id: str, tmp_path: Path, device: Device = CPU) -> JobStatus | None:
    return execute_job(engine, job_id, device=device, worker_host="test-host", data_dir=tmp_path,
                       leases=LeaseKeeper(engine, 0.2))


def stored(engine: Engine, job_id: str) -> Any:
    with engine.connect() as connection:
        job = jobs.find_job(connection, job_id)
        return job, jobs.latest_metrics(connection, job)


def test_a_job_runs_and_records_result_and_metrics(engine: Engine, tmp_path: Path) -> None:
    job_id = add_job(engine, "himmelblau", {"starts": [[4, 0]], "lr": 0.01, "steps": 2000, "log_every": 500})
    assert run(engine, job_id, tmp_path) is JobStatus.SUCCEEDED
    job, metrics = stored(engine, job_id)
    assert job.status is JobStatus.SUCCEEDED and job.worker_host == "test-host" and job.attempts == 1
    assert job.result["nearest_minimum"] == [3.584428, -1.848126] and job.result["distance"] < 1e-2
    assert [m.step for m in metrics] == [0, 500, 1000, 1500]
    assert metrics[0].values["points"] == [[4.0, 0.0, 34.0]]  # f(4, 0) = 5² + (−3)²
    assert metrics[1].values["points"][0][2] < 34.0


def test_a_delivered_twice_job_runs_once(engine: Engine, tmp_path: Path) -> None:
    job_id = add_job(engine, "himmelblau", {"steps": 10, "log_every": 5})
    assert run(engine, job_id, tmp_path) is JobStatus.SUCCEEDED
    assert run(engine, job_id, tmp_path) is None
    job, metrics = stored(engine, job_id)
    assert job.attempts == 1 and len(metrics) == 2


def test_unknown_job_is_skipped(engine: Engine, tmp_path: Path) -> None:
    assert run(engine, "0" * 32, tmp_path) is None


@pytest.mark.parametrize(("kind", "params", "reason"), [
    ("himmelblau", {"lr": float("nan")}, "invalid parameters: lr: Input should be a finite number"),
    ("himmelblau", {"steps": 10, "evil": "__import__('os')"}, "invalid parameters: evil: Extra inputs"),
    ("himmelblau", {"optimizer": "lbfgs"}, "invalid parameters: optimizer:"),
    ("mnist", {"epochs": 0}, "invalid parameters: epochs:"),
    ("quantum", {}, "unknown kind 'quantum' on this worker (install its package)"),
    ("himmelblau", {"optimizer": "sgd", "lr": 10, "steps": 100, "log_every": 1}, "diverged: f is not finite"),
])
def test_forged_or_failing_jobs_fail_with_a_reason(engine: Engine, tmp_path: Path, kind: str,
                                                   params: dict[str, Any], reason: str) -> None:
    job_id = add_job(engine, kind, params)
    assert run(engine, job_id, tmp_path) is JobStatus.FAILED
    job, _ = stored(engine, job_id)
    assert job.status is JobStatus.FAILED and job.error.startswith(reason) and job.result is None


def test_a_kind_this_worker_lacks_raises_the_one_unknown_kind_error(tmp_path: Path) -> None:
    with pytest.raises(kinds.UnknownKindError, match=r"^unknown kind 'quantum' on this worker \(install its package"):
        run_spec("quantum", {}, RunContext("cpu", lambda step, values: None, tmp_path))


def test_a_gpu_job_on_a_host_without_one_fails_as_device_unavailable(engine: Engine,
                                                                     tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has a GPU")
    job_id = add_job(engine, "himmelblau", {"steps": 10}, device="cuda:0")
    assert run(engine, job_id, tmp_path, Device("cuda", 0)) is JobStatus.FAILED
    job, _ = stored(engine, job_id)
    assert job.error == "device unavailable: cuda:0 is not available to this worker"


def test_metrics_survive_a_failed_write(engine: Engine, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    from mlpq.worker import execute

    real_add = jobs.add_metrics
    failures = iter([OperationalError("INSERT", {}, Exception("server closed the connection"))])

    def flaky_add(*args: Any) -> None:
        real_add(*args)
        error = next(failures, None)
        if error is not None:
            raise error  # after the rows were added: the transaction rolls back

    monkeypatch.setattr(execute.jobs, "add_metrics", flaky_add)
    monkeypatch.setattr(execute.time, "sleep", lambda _: None)
    job_id = add_job(engine, "himmelblau", {"steps": 100, "log_every": 10})
    assert run(engine, job_id, tmp_path) is JobStatus.SUCCEEDED
    _, metrics = stored(engine, job_id)
    assert [m.step for m in metrics] == list(range(0, 100, 10))


def test_a_commit_retried_after_it_went_through_stores_each_step_once(database_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    from mlpq.worker import execute

    engine = make_engine(database_url)
    job_id = add_job(engine, "himmelblau", {"steps": 100, "log_every": 10})
    with engine.begin() as connection:
        jobs.claim_job(connection, job_id, "test-host")
    lost_replies = iter([OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))])

    commit = engine.dialect.do_commit

    def reply_lost(dbapi_connection: Any) -> None:  # the commit goes through; the client never hears so
        commit(dbapi_connection)
        error = next(lost_replies, None)
        if error is not None:
            raise error

    monkeypatch.setattr(engine.dialect, "do_commit", reply_lost)

    monkeypatch.setattr(execute.time, "sleep", lambda _: None)
    recorder = execute.MetricsRecorder(engine, job_id, 1, Lease(job_id, 1))
    recorder.pending = [(0, {"f": 170.0}), (10, {"f": 150.0})]
    recorder.flush()  # committed, "failed", written again by with_db_retries
    assert next(lost_replies, None) is None and recorder.pending == []
    _, metrics = stored(engine, job_id)
    assert [(m.step, m.values) for m in metrics] == [(0, {"f": 170.0}), (10, {"f": 150.0})]  # of attempt 1
    engine.dispose()


ENDLESS_HIMMELBLAU = {"grid": 64, "steps": 1_000_000, "log_every": 1_000_000}
"""Minutes of steps (4,096 starts), logged only at step 0: nothing but the stop check can end it early."""


def start_in_thread(engine: Engine, job_id: str, tmp_path: Path) -> Future[JobStatus | None]:
    """Run the job in a thread; return once it is running (torch already imported, so it computes at once)."""
    kinds.get("himmelblau").load_runner()
    future: Future[JobStatus | None] = ThreadPoolExecutor(1).submit(run, engine, job_id, tmp_path)
    deadline = time.monotonic() + 30
    while stored(engine, job_id)[0].status is not JobStatus.RUNNING:
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.05)
    return future


def test_a_cancel_stops_a_run_that_never_logs(engine: Engine, tmp_path: Path) -> None:
    job_id = add_job(engine, "himmelblau", ENDLESS_HIMMELBLAU)
    running = start_in_thread(engine, job_id, tmp_path)
    with engine.begin() as connection:
        jobs.request_cancel(connection, jobs.find_job(connection, job_id))
    assert running.result(timeout=20) is JobStatus.CANCELLED, stored(engine, job_id)[0].error
    job, _ = stored(engine, job_id)
    assert job.status is JobStatus.CANCELLED and job.error == "cancelled while running"
    with engine.connect() as connection:  # SQL NULL, as for a job cancelled while queued, not JSON null
        assert connection.scalar(text("SELECT result IS NULL AND provenance IS NOT NULL FROM jobs")) == 1


def test_a_run_that_lost_its_lease_stops_computing(engine: Engine, tmp_path: Path) -> None:
    job_id = add_job(engine, "himmelblau", ENDLESS_HIMMELBLAU)
    running = start_in_thread(engine, job_id, tmp_path)
    with engine.begin() as connection:  # as the reaper does: requeued, then taken by another worker
        connection.execute(update(JOBS).where(JOBS.c.id == job_id).values(attempts=JOBS.c.attempts + 1))
    assert running.result(timeout=20) is None
    job, _ = stored(engine, job_id)
    assert job.status is JobStatus.RUNNING and job.attempts == 2 and job.result is None


def test_a_job_whose_submit_has_not_released_it_waits_then_runs(engine: Engine, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "himmelblau", {"steps": 10}, "cpu", timeout_s=60, batch_id="f" * 32).id
    looks = []
    status = jobs.job_status
    monkeypatch.setattr(jobs, "job_status", lambda connection, job: looks.append(job) or status(connection, job))
    with ThreadPoolExecutor(1) as pool:
        outcome = pool.submit(run, engine, job_id, tmp_path)
        deadline = time.monotonic() + 30
        while len(looks) < 3 and time.monotonic() < deadline:  # the worker has looked at it three times
            time.sleep(0.01)
        assert len(looks) >= 3 and not outcome.done()
        with engine.connect() as connection:
            assert jobs.find_job(connection, job_id).attempts == 0
        with engine.begin() as connection:
            jobs.release_batch(connection, "f" * 32)
        assert outcome.result(timeout=60) is JobStatus.SUCCEEDED


def test_a_job_released_between_the_claim_and_the_look_at_it_runs(engine: Engine, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL each statement sees the latest commit: the claim can find the job submitting and the next
    statement find it queued. The worker claims it again rather than drop it until the reconciler's round."""
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "himmelblau", {"steps": 10}, "cpu", timeout_s=60, batch_id="c" * 32).id
    claim = jobs.claim_job

    def release_after_the_claim(connection: Any, job: str, host: str) -> Any:
        claimed = claim(connection, job, host)
        if claimed is None:
            jobs.release_batch(connection, "c" * 32)
        return claimed

    monkeypatch.setattr(jobs, "claim_job", release_after_the_claim)
    assert run(engine, job_id, tmp_path) is JobStatus.SUCCEEDED


def test_a_job_withdrawn_while_waiting_for_its_release_never_runs(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "himmelblau", {"steps": 10}, "cpu", timeout_s=60, batch_id="a" * 32).id
    with ThreadPoolExecutor(1) as pool:
        outcome = pool.submit(run, engine, job_id, tmp_path)
        with engine.begin() as connection:
            jobs.withdraw_batch(connection, "a" * 32)
        assert outcome.result(timeout=60) is None
    assert stored_or_none(engine, job_id) is None


def test_a_job_left_unreleased_past_the_wait_is_withdrawn_by_the_worker(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "himmelblau", {"steps": 10}, "cpu", timeout_s=60, batch_id="b" * 32).id
    assert execute_job(engine, job_id, device=CPU, worker_host="test-host", data_dir=tmp_path,
                       leases=LeaseKeeper(engine, 0.2), release_wait_s=0.5) is None
    job, _ = stored(engine, job_id)
    assert (job.status, job.error, job.attempts) == (JobStatus.CANCELLED, jobs.ABANDONED, 0)


def stored_or_none(engine: Engine, job_id: str) -> JobStatus | None:
    with engine.connect() as connection:
        return jobs.job_status(connection, job_id)

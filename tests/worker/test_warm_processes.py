"""A real worker keeps its pool process across jobs and replaces it after a CUDA failure raised inside a job.

The job kind ``fault`` (tests/jobkinds, found through its entry point) reports its
process id or raises the ``RuntimeError`` it is given, from inside the job, in the
worker's pool process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlpq.db.status import JobStatus
from tests.faults.helpers import finished, submit
from tests.jobkinds import fault_kind
from tests.services import WorkerProcess, start_worker

CUDA_OOM = ("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported at some other API call, "
            "so the stacktrace below might be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1")


@pytest.fixture
def fault_env(service_env: dict[str, str]) -> Iterator[dict[str, str]]:
    with fault_kind.visible_here():  # so this process can submit it
        yield fault_kind.worker_env(service_env)


def worker(env: dict[str, str], tmp_path: Path, *args: str) -> Iterator[WorkerProcess]:
    process = start_worker(env, tmp_path / "worker.log", "--device", "cpu", "--concurrency", "1", *args)
    yield process
    process.stop()


@pytest.fixture
def warm_worker(fault_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    yield from worker(fault_env, tmp_path)


def pid_of_next_job(env: dict[str, str]) -> int:
    job = finished(env, submit(env, "fault", action="pid"))
    assert job.status is JobStatus.SUCCEEDED, job.error
    return job.result["pid"]


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_cuda_out_of_memory_error_fails_the_job_and_replaces_the_process(
        fault_env: dict[str, str], warm_worker: WorkerProcess) -> None:
    first = pid_of_next_job(fault_env)
    assert pid_of_next_job(fault_env) == first  # warm: the same process runs the next job

    failed = finished(fault_env, submit(fault_env, "fault", action="raise", message="mat1 and mat2 shapes differ"))
    assert failed.error == "RuntimeError: mat1 and mat2 shapes differ"
    assert pid_of_next_job(fault_env) == first  # an ordinary failure keeps the process

    failed = finished(fault_env, submit(fault_env, "fault", action="raise", message=CUDA_OOM))
    assert failed.status is JobStatus.FAILED
    assert failed.error == "CUDA out of memory: the CUDA runtime could not allocate device memory"
    after = pid_of_next_job(fault_env)  # the next job on that worker runs, in a fresh process
    assert after != first, warm_worker.log()
    assert f"replacing worker process {first}: the last job ended with CUDA out of memory" in warm_worker.log()
    assert "WorkerLostError" not in warm_worker.log()
    assert pid_of_next_job(fault_env) == after


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_max_jobs_per_process_gives_each_job_a_fresh_process(fault_env: dict[str, str], tmp_path: Path) -> None:
    for _ in worker(fault_env, tmp_path, "--max-jobs-per-process", "1"):
        assert pid_of_next_job(fault_env) != pid_of_next_job(fault_env)

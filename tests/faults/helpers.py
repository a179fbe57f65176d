"""Reading the ledger and driving worker processes in fault tests."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from mlpq.api_cli.api import Client, JobRequest
from mlpq.config import Settings
from mlpq.db.records import JobRecord
from mlpq.db.status import JobStatus
from tests.jobkinds.fault_kind import Gate
from tests.services import WorkerProcess, start_worker

T = TypeVar("T")
TERMINAL = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.PRUNED}


def client(env: Mapping[str, str]) -> Client:
    return Client(Settings.from_env(env))


def submit(env: Mapping[str, str], kind: str, timeout_s: int | None = None, **params: Any) -> str:
    [job] = client(env).submit_many([JobRequest(kind, params, "cpu", timeout_s)])
    return job.id


def eventually(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def submit_and_see_it_run(env: Mapping[str, str], kind: str, **params: Any) -> str:
    """Submit a job and wait until its first step or epoch is stored."""
    job_id = submit(env, kind, **params)
    eventually(lambda: metric_count(env, job_id), 60, f"the first metric of {job_id}")
    return job_id


def submit_and_hold(env: Mapping[str, str], gate: Gate, timeout_s: int | None = None) -> tuple[str, int]:
    """Submit a job that waits at ``gate`` and wait until it is there; returns its id and its process's."""
    job_id = submit(env, "fault", timeout_s, **gate.params())
    return job_id, eventually(gate.pid, 60, f"job {job_id} to reach the gate")


def job(env: Mapping[str, str], job_id: str) -> JobRecord:
    return client(env).get(job_id).job


def finished(env: Mapping[str, str], job_id: str, timeout: float = 90) -> JobRecord:
    return eventually(lambda: (j := job(env, job_id)).status in TERMINAL and j, timeout, f"job {job_id} to end")


def metric_count(env: Mapping[str, str], job_id: str) -> int:
    return len(client(env).get(job_id).metrics)


def pool_children(worker: WorkerProcess) -> list[int]:
    """Pids of the worker's pool processes (children of its main process)."""
    children = Path(f"/proc/{worker.process.pid}/task/{worker.process.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def kill_worker(worker: WorkerProcess) -> None:
    """SIGKILL the whole worker: main process and pool, no chance to clean up."""
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(10)


def new_worker(env: Mapping[str, str], log: Path, *args: str, wrapper: Sequence[str] = ()) -> WorkerProcess:
    return start_worker(env, log, "--device", "cpu", *args, wrapper=wrapper)

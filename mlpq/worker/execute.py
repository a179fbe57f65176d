"""Run one job from the ledger: claim it, re-validate its spec, run it, record the outcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from mlpq.db import jobs
from mlpq.db.schema import JobStatus
from mlpq.models import registry
from mlpq.models.context import JobError, RunContext
from mlpq.worker.device import Device, torch_device_name

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0


class DeviceUnavailableError(JobError):
    reason = "device unavailable"


class InvalidJobError(JobError):
    reason = "invalid job"


@dataclass
class MetricsRecorder:
    """The progress callback: buffers reported steps and writes them in batches."""

    sessions: sessionmaker[Session]
    job_id: str
    attempt: int
    interval: float = FLUSH_INTERVAL_S
    pending: list[tuple[int, Mapping[str, Any]]] = field(default_factory=list)
    last_flush: float = field(default_factory=time.monotonic)

    def __call__(self, step: int, values: Mapping[str, Any]) -> None:
        self.pending.append((step, dict(values)))
        if time.monotonic() - self.last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered in one transaction."""
        if self.pending:
            with self.sessions.begin() as session:
                jobs.add_metrics(session, self.job_id, self.attempt, self.pending)
            self.pending = []
        self.last_flush = time.monotonic()


def describe_failure(exc: BaseException) -> str:
    """One line that says why a job failed, its category first."""
    if isinstance(exc, JobError):
        return f"{exc.reason}: {exc}"
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors())
        return f"invalid parameters: {problems}"
    if type(exc).__name__ == "OutOfMemoryError":
        return f"CUDA out of memory: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


def resolve_device(device: Device) -> str:
    """The torch device for a job here; raises ``JobError`` if this process has no such device."""
    name = torch_device_name(device)
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DeviceUnavailableError(f"{device} is not available to this worker")
    return name


def run_spec(kind: str, params: Mapping[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Re-validate the stored parameters (a message or row may be forged) and run the job code."""
    if kind not in registry.KINDS:
        raise InvalidJobError(f"unknown job kind {kind!r}")
    spec = registry.parse_spec(kind, params)
    return registry.KINDS[kind].load_runner()(spec, ctx)


def execute_job(
    sessions: sessionmaker[Session], job_id: str, *, device: Device, worker_host: str, data_dir: Path,
) -> JobStatus | None:
    """Run job ``job_id`` if it is still queued; returns its end status, or ``None`` if not claimed."""
    with sessions.begin() as session:
        job = jobs.claim_job(session, job_id, worker_host)
        if job is None:
            log.warning("job %s is not queued (unknown, taken or ended): skipped", job_id)
            return None
        kind, params, attempt = job.kind, job.params, job.attempts
    log.info("job %s (%s) attempt %d started", job_id, kind, attempt)
    recorder = MetricsRecorder(sessions, job_id, attempt)
    try:
        ctx = RunContext(resolve_device(device), recorder, data_dir)
        result = run_spec(kind, params, ctx)
        status, outcome = JobStatus.SUCCEEDED, {"result": result}
    except Exception as exc:  # the job's failure is data for the ledger, not a worker crash
        log.info("job %s failed", job_id, exc_info=True)
        status, outcome = JobStatus.FAILED, {"error": describe_failure(exc)}
    recorder.flush()
    with sessions.begin() as session:
        jobs.finish_job(session, job_id, status, **outcome)
    log.info("job %s %s", job_id, status.value)
    return status

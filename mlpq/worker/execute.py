"""Run one job from the ledger: claim it, re-validate its spec, run it under a lease, record the outcome."""

from __future__ import annotations

import functools
import logging
import time
from datetime import timedelta
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from mlpq.config import Leases
from mlpq.db import jobs
from mlpq.db.status import JobStatus
from mlpq import kinds
from mlpq.devices import COMMAND_KIND, Device
from mlpq.models.context import JobError, RunContext
from mlpq.redact import one_line, shown
from mlpq.worker import checkpoints, cuda_errors, job_log, logs, provenance
from mlpq.worker.device import torch_device_name
from mlpq.worker.job_files import ArtifactSettings, JobFiles
from mlpq.worker.lease import JobCancelled, JobLost, Lease, LeaseKeeper
from mlpq.worker.recycle import ProcessHealth

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0
RELEASE_POLL_S, RELEASE_POLL_MAX_S = 0.02, 0.5
"""How often a worker looks again at a job whose submit has not released it yet: soon, then less often."""
DB_RETRY_S = Leases.db_retry_s
"""How long a worker keeps retrying a ledger write while the database is unreachable (``MLPQ_DB_RETRY_SECONDS``)."""

T = TypeVar("T")


class DeviceUnavailableError(JobError):
    reason = "device unavailable"


class CommandsRefusedError(JobError):
    reason = "refused"


def with_db_retries(write: Callable[[], T], *, deadline_s: float = DB_RETRY_S) -> T:
    """Run ``write``, retrying with backoff while the database is unreachable or locked."""
    give_up = time.monotonic() + deadline_s
    delay = 0.5
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + delay > give_up:
                raise
            log.warning("ledger write failed, retrying in %.1f s: %s", delay, logs.reason(exc))
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@dataclass
class MetricsRecorder:
    """The progress callback: checks the lease, buffers reported steps and writes them in batches (the first at
    once)."""

    engine: Engine
    job_id: str
    attempt: int
    lease: Lease
    interval: float = FLUSH_INTERVAL_S
    retry_s: float = DB_RETRY_S
    pending: list[tuple[int, Mapping[str, Any]]] = field(default_factory=list)
    last_flush: float = float("-inf")
    """When the buffer was last written; never, at first, so the first step is stored at once (a job that
    then blocks for long, or a pruner waiting for its first epoch, sees it)."""
    last_step: int | None = None

    def __call__(self, step: int, values: Mapping[str, Any]) -> None:
        self.lease.check()
        self.pending.append((step, dict(values)))
        self.last_step = step
        if time.monotonic() - self.last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered in one transaction; the buffer empties once it is committed."""
        if self.pending:
            def write() -> None:
                with self.engine.begin() as connection:
                    self.add_pending(connection)

            try:
                with_db_retries(write, deadline_s=self.retry_s)
            except IntegrityError as exc:  # the job's row is gone: its ledger was replaced under the worker
                raise JobLost(self.job_id) from exc
            self.pending = []
        self.last_flush = time.monotonic()

    def flush_reported(self) -> int | None:
        """Write every step reported so far (before a checkpoint that covers them); returns the last one."""
        self.flush()
        return self.last_step

    def add_pending(self, connection: Connection) -> None:
        """Add what is buffered to ``connection``'s transaction (a retried transaction adds it again)."""
        jobs.add_metrics(connection, self.job_id, self.attempt, self.pending)


def describe_failure(exc: BaseException, timeout_s: int) -> str:
    """One line that says why a job failed, its category first."""
    if isinstance(exc, kinds.UnknownKindError):  # its message says so in full
        return str(exc)
    if isinstance(exc, JobError):
        return f"{exc.reason}: {exc}" if str(exc) else exc.reason
    cuda_failure = cuda_errors.classify(exc)
    if cuda_failure is not None:
        return str(cuda_failure)
    if isinstance(exc, SoftTimeLimitExceeded):
        return f"time limit: exceeded {timeout_s} s"
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors())
        return f"invalid parameters: {problems}"
    return f"{type(exc).__name__}: {exc}"


def resolve_device(device: Device) -> str:
    """The torch device for a job here; raises ``JobError`` if this process has no such device."""
    name = torch_device_name(device)
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DeviceUnavailableError(f"{device} is not available to this worker")
    return name


def load_job(kind: str, params: Mapping[str, Any]) -> tuple[Callable[[Any, RunContext], dict[str, Any]], Any]:
    """The kind's runner and the stored parameters re-validated (a message or row may be forged)."""
    try:
        declared = kinds.get(kind)
    except kinds.UnknownKindError as exc:
        raise kinds.UnknownKindError(f"unknown kind {shown(kind)} on this worker (install its package)") from exc
    return declared.load_runner(), declared.spec.model_validate(params)


def run_spec(kind: str, params: Mapping[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Re-validate the stored parameters and run the job code."""
    runner, spec = load_job(kind, params)
    return runner(spec, ctx)


@dataclass(frozen=True)
class Claimed:
    kind: str
    params: dict[str, Any]
    attempt: int
    timeout_s: int


def claim(engine: Engine, job_id: str, worker_host: str, retry_s: float,
          release_wait_s: float = Leases.lease_s) -> Claimed | None:
    """Claim the job as a new attempt; ``None`` if it is not queued.

    A job still ``submitting`` (its submit has published it but not yet released
    its batch) is waited for until it is released or withdrawn; past
    ``release_wait_s`` its submit is taken for dead and the job withdrawn, as
    maintenance would (``jobs.withdraw_abandoned``).
    """
    def write() -> Claimed | JobStatus | None:
        with engine.begin() as connection:
            job = jobs.claim_job(connection, job_id, worker_host)
            if job is not None:
                return Claimed(job.kind, job.params, job.attempts, job.timeout_s)
            if jobs.withdraw_abandoned(connection, timedelta(seconds=release_wait_s), job_id=job_id):
                return JobStatus.CANCELLED
            return jobs.job_status(connection, job_id)

    delay = RELEASE_POLL_S
    while (outcome := with_db_retries(write, deadline_s=retry_s)) in (JobStatus.SUBMITTING, JobStatus.QUEUED):
        if outcome is JobStatus.SUBMITTING:
            time.sleep(delay)
            delay = min(delay * 2, RELEASE_POLL_MAX_S)
        # QUEUED: released between the claim and the look at its status (PostgreSQL's statements each see the
        # latest commit): claim it again at once
    return outcome if isinstance(outcome, Claimed) else None


def note_lease_lost(engine: Engine, job_id: str, attempt: int) -> None:
    """Say that the attempt was alive when its job was taken from it (best effort: it records nothing else)."""
    try:
        with engine.begin() as connection:
            jobs.end_attempt(connection, job_id, attempt, jobs.LEASE_LOST)
    except Exception as exc:  # the database is away or the job is gone: its row keeps "worker lost"
        log.warning("job %s attempt %d: could not note its lost lease: %s", job_id, attempt, logs.reason(exc))


def execute_job(
    engine: Engine, job_id: str, *, device: Device, worker_host: str, data_dir: Path,
    leases: LeaseKeeper, db_retry_s: float = DB_RETRY_S, health: ProcessHealth | None = None,
    gpu_index: int | None = None, release_wait_s: float = Leases.lease_s,
    artifacts: ArtifactSettings = ArtifactSettings(), allow_commands: bool = False,
) -> JobStatus | None:
    """Run job ``job_id`` if it is still queued; returns its end status, or ``None`` if not this run's to end.

    Ledger writes are retried for up to ``db_retry_s`` seconds while the database is unreachable.
    A CUDA failure is also noted in ``health``, which decides whether this process
    may run the next job; ``gpu_index`` is the host's index of the worker's GPU.
    A job its submit has not released yet is waited for (see ``claim``). ``artifacts``: where the files it
    keeps go. A command job fails unless ``allow_commands`` (its message reached a worker that does not run
    commands: a forged one).
    """
    job = claim(engine, job_id, worker_host, db_retry_s, release_wait_s)
    if job is None:
        log.warning("job %s is not queued (unknown, taken or ended): skipped", job_id)
        return None
    log.info("job %s (%s) attempt %d started", job_id, one_line(job.kind), job.attempt)
    own_log = job_log.JobLog.open(engine, job_id, job.attempt, with_db_retries, retry_s=db_retry_s)
    own_log.event(f"received by {worker_host}")
    lease = leases.hold(job_id, job.attempt)
    recorder = MetricsRecorder(engine, job_id, job.attempt, lease, retry_s=db_retry_s)
    files = JobFiles(engine, artifacts, job_id, job.attempt, lease.check, db_retry_s)
    retry = functools.partial(with_db_retries, deadline_s=db_retry_s)
    reported: list[str] = []
    resolved = False
    failure: Exception | None = None
    try:
        if job.kind == COMMAND_KIND and not allow_commands:
            raise CommandsRefusedError("this worker does not run commands (start it with --allow-commands)")
        with own_log.capturing():
            torch_device = resolve_device(device)
            resolved = True
            own_log.event(f"attempt {job.attempt} started on {worker_host} ({torch_device})")
            runner, spec = load_job(job.kind, job.params)
            with checkpoints.attempt_folder() as folder:
                kept = checkpoints.Checkpoints(files, spec, recorder.flush_reported, retry, folder)
                resumed = kept.resume()
                result = runner(spec, RunContext(torch_device, recorder, data_dir, lease.check, reported.append,
                                                 save_artifact=files.save_artifact, checkpoint=kept.save,
                                                 resumed=resumed.path, fetch_artifact=kept.fetch, job_id=job_id))
        status, outcome = JobStatus.SUCCEEDED, {"result": checkpoints.with_notice(result, resumed.notice)}
    except JobLost:
        log.warning("job %s attempt %d lost its lease (requeued, ended or gone): stopped without recording",
                    job_id, job.attempt)
        note_lease_lost(engine, job_id, job.attempt)
        own_log.end_alone(f"attempt {job.attempt} lost its lease (requeued, ended or gone): stopped")
        return None
    except JobCancelled as stop:
        status, outcome = stop.status, {"error": f"{stop.status.value} while running"}
    except Exception as exc:  # the job's failure is data for the ledger, not a worker crash
        failure = exc
        status, outcome = JobStatus.FAILED, {"error": describe_failure(exc, job.timeout_s)}
        if health is not None:
            health.note(exc)
    finally:
        leases.release()
    about = provenance.describe(device, reported[-1] if reported else None, gpu_index) if resolved else None

    def finish() -> bool:
        with engine.begin() as connection:  # the last metrics and the outcome in one transaction
            recorder.add_pending(connection)
            finished = jobs.finish_job(connection, job_id, job.attempt, status, provenance=about, **outcome)
            own_log.write_end(connection, *job_log.outcome_line(job.attempt, status.value, outcome.get("error"),
                                                               finished))
            return finished

    try:
        finished = with_db_retries(finish, deadline_s=db_retry_s)
    except IntegrityError:  # its metrics have no job row to belong to: the ledger was replaced
        log.warning("job %s is gone from the ledger: outcome dropped", job_id)
        return None
    if not finished:
        log.warning("job %s attempt %d was taken over before it finished: outcome dropped", job_id, job.attempt)
        note_lease_lost(engine, job_id, job.attempt)
        return None
    checkpoints.remove(files, retry)
    if failure is None:
        log.info("job %s %s", job_id, status.value)
    else:
        log.info("job %s failed: %s", job_id, one_line(outcome["error"], logs.REASON_CHARS),
                 exc_info=logs.traceback_of(failure))
    return status

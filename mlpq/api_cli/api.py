"""Submit and query jobs from Python. The CLI is a thin layer over ``Client``.

Nothing here imports torch, and Celery only when a command talks to the broker.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from sqlalchemy import Engine

from mlpq import kinds
from mlpq.api_cli import artifact_files, start_from
from mlpq.api_cli.batches import NewJob, SubmitAborted, submit_batch
from mlpq.api_cli.sorting import Sort
from mlpq.db import job_logs, jobs
from mlpq.db.artifacts import ArtifactRecord, ArtifactStore, list_artifacts
from mlpq.db.deletion import delete_finished
from mlpq.db.job_logs import LogLine
from mlpq.db.jobs import CancelOutcome
from mlpq.db.ledger import open_ledger, require_identity
from mlpq.db.lookup import JobLookupError
from mlpq.db.records import AttemptRecord, JobRecord, MetricRecord
from mlpq.db.status import JobStatus
from mlpq.devices import job_queue, parse_device
from mlpq.errors import UnavailableError
from mlpq.redact import mask_url
from mlpq import messages

if TYPE_CHECKING:
    import redis
    from celery import Celery

    from mlpq.config import Settings
    from mlpq.worker.dead_letters import DeadLetters


class JobRequest(NamedTuple):
    kind: str
    params: Mapping[str, Any]
    device: str = "cpu"
    timeout_s: int | None = None
    """Seconds the job may run; the kind's default when ``None``."""
    rerun_of: str | None = None
    pool: str | None = None
    """Only workers of this pool (``mlpq worker --pool``) run the job; ``None``: workers outside any pool."""


class BrokerUnavailableError(UnavailableError, ConnectionError):
    """The broker could not be reached; no job was left behind unpublished."""


@dataclass(frozen=True)
class JobView:
    """A job with its metrics as one curve (see ``jobs.latest_metrics``) and its attempts: plain values, no
    database behind them."""

    job: JobRecord
    metrics: tuple[MetricRecord, ...]
    attempts: tuple[AttemptRecord, ...] = ()


@dataclass(frozen=True)
class LogView:
    """A job and lines of its log, read together: once ``job`` has ended, ``lines`` hold its last ones."""

    job: JobRecord
    lines: tuple[LogLine, ...]


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker as the registry of live workers has it, with the length of its device's queue."""

    name: str
    host: str
    device: str
    pool: str | None
    queues: list[str]
    active_jobs: list[str]
    queued: int
    """Messages waiting in the queue of the worker's own device, and its command queue if it runs commands (not
    counting the shared ``cuda`` queues)."""
    gpu_name: str | None
    gpu_memory_used_mib: int | None
    gpu_memory_total_mib: int | None
    gpu_index: int | None = None
    """The GPU's index as ``nvidia-smi`` numbers it (NVML's)."""
    gpu_uuid: str | None = None
    state: str = "running"
    """``running``, or ``stopping``: in warm shutdown, finishing its jobs, taking no new ones."""
    concurrency: int = 1
    """Its pool processes: jobs it runs at once."""
    threads: int | None = None
    """Torch threads each of its pool processes gives a job starting now."""
    commands: bool = False
    """Whether it runs command jobs (``mlpq worker --allow-commands``)."""


class Client:
    """Talks to the job ledger and, to submit or list workers, to the broker.

    Every method returns frozen dataclasses (``JobRecord``, ``MetricRecord``, ``JobView``,
    ``WorkerInfo``), built inside the database transaction: nothing of SQLAlchemy's leaves it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        """The ledger's engine; ``SchemaError`` unless it is at this mlpq's schema (see ``open_ledger``)."""
        return open_ledger(self.settings.database_url)

    @cached_property
    def ledger(self) -> str:
        """The ledger's identity, which names its queues."""
        with self.engine.connect() as connection:
            return require_identity(connection)

    @cached_property
    def celery(self) -> Celery:
        from mlpq.worker.app import create_app  # Celery is imported only by commands that talk to workers

        return create_app(self.settings)

    @staticmethod
    def validate(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The full validated parameters for ``kind``, with a seed drawn when none is given.

        Raises ``UnknownKindError`` and pydantic's ``ValidationError``.
        """
        spec = kinds.get(kind).spec
        params = dict(params)
        if "seed" in spec.model_fields and params.get("seed") is None:
            params["seed"] = secrets.randbelow(kinds.SEED_BOUND)
        return spec.model_validate(params).model_dump(mode="json")

    def submit(self, kind: str, params: Mapping[str, Any], device: str = "cpu", *,
               timeout_s: int | None = None, pool: str | None = None) -> JobRecord:
        """Submit one job; see ``submit_many``."""
        return self.submit_many([JobRequest(kind, params, device, timeout_s, pool=pool)])[0]

    def submit_many(self, requests: Sequence[JobRequest], *, sweep_id: str | None = None) -> list[JobRecord]:
        """Validate every request, then submit them all or none (see ``mlpq.api_cli.batches``).

        Every job runs once this returns. If it raises, none runs: ``SubmitInterrupted`` on Ctrl-C,
        ``BrokerUnavailableError`` when the broker failed, ``SubmitAborted`` for a failure of the ledger.
        """
        new = [NewJob(r.kind, self.validate(r.kind, self._started_from(r)), str(device), device.pool,
                      r.timeout_s or kinds.get(r.kind).default_timeout_s, r.rerun_of)
               for r in requests for device in [parse_device(r.device, r.pool)]]
        try:
            return submit_batch(self.engine, self.settings.broker_url, self.ledger, new, sweep_id=sweep_id,
                                grace_s=self.settings.leases.hard_limit_grace_s)
        except SubmitAborted as exc:
            if exc.stage == "publish" and isinstance(exc.__cause__, Exception):
                raise BrokerUnavailableError(f"{self._unreachable(exc.__cause__)}; {exc.fate}") from exc.__cause__
            raise

    def _started_from(self, request: JobRequest) -> Mapping[str, Any]:
        """The request's parameters, with the model it starts from (``--init-from``) checked and pinned."""
        kind = kinds.get(request.kind)
        if kind.start_from is None or request.params.get(start_from.SOURCE) is None:
            return request.params
        with self.engine.connect() as connection:
            return start_from.resolve(connection, kind, request.params)

    def rerun(self, id_or_prefix: str, device: str | None = None) -> JobRecord:
        """Submit a job's kind, parameters (seed included) and time limit again, in its pool,
        on ``device`` or its own."""
        original = self.get(id_or_prefix).job
        return self.submit_many([JobRequest(original.kind, original.params, device or original.device,
                                            original.timeout_s, rerun_of=original.id, pool=original.pool)])[0]

    def cancel(self, id_or_prefix: str, stop_as: JobStatus = JobStatus.CANCELLED) -> tuple[JobRecord, CancelOutcome]:
        """Cancel a queued job, ask a running one to stop; it ends ``stop_as`` (``cancelled`` or ``pruned``).
        Raises ``JobLookupError``."""
        with self.engine.begin() as connection:
            outcome = jobs.request_cancel(connection, jobs.find_job(connection, id_or_prefix), stop_as)
            return jobs.find_job(connection, id_or_prefix), outcome

    def get(self, id_or_prefix: str) -> JobView:
        """A job by id or unique prefix with its metrics and attempts; raises ``JobLookupError``."""
        with self.engine.connect() as connection:
            job = jobs.find_job(connection, id_or_prefix)
            return JobView(job, tuple(jobs.latest_metrics(connection, job)),
                           tuple(jobs.attempts_of(connection, job.id)))

    def logs(self, id_or_prefix: str, attempt: int | None = None, *, after_id: int = 0,
             limit: int = job_logs.READ_LIMIT) -> LogView:
        """The job (by id or unique prefix) and its log lines after line ``after_id``, of attempt ``attempt``
        or all, at most ``limit``; raises ``JobLookupError``. The job is read first, so a job that has
        ended comes with every line it stored (they are committed with its outcome)."""
        with self.engine.connect() as connection:
            job = jobs.find_job(connection, id_or_prefix)
            return LogView(job, tuple(job_logs.read_log(connection, job.id, attempt=attempt, after_id=after_id,
                                                        limit=limit)))

    def list(self, *, kind: str | None = None, status: str | None = None, device: str | None = None,
             sweep: str | None = None, limit: int = 20, offset: int = 0, sort: str = "-created") -> list[JobRecord]:
        """Jobs, optionally filtered (``sweep``: a sweep id or a prefix of one), sorted by ``sort`` (the newest
        first by default; ``-result.test_accuracy``: the most accurate first, see ``mlpq.api_cli.sorting``),
        skipping the first ``offset`` (one page after another). Raises ``SortFieldError`` for a field the
        listing of these jobs does not have."""
        order = Sort.parse(sort)
        if order.column is None:
            order.check([kind] if kind else kinds.names())
        filters: dict[str, Any] = {"kind": kind, "status": JobStatus(status) if status else None,
                                   "device": str(parse_device(device)) if device else None, "sweep": sweep}
        with self.engine.connect() as connection:
            if order.column is not None:
                return jobs.list_jobs(connection, **filters, limit=limit, offset=offset, order_by=order.column,
                                      descending=order.descending)
            found = jobs.list_jobs(connection, **filters, limit=None)  # sorted here, then the page
        return order.apply(found)[offset:offset + limit]

    def wait(self, job_id: str, *, on_metric: Callable[[MetricRecord], None] | None = None,
             on_queued: Callable[[], None] | None = None, on_poll: Callable[[JobRecord], None] | None = None,
             poll_interval: float = 0.2) -> JobRecord:
        """Block until the job ends, passing each newly stored metric to ``on_metric``.

        ``on_queued`` is called on every poll that finds the job still queued,
        ``on_poll`` on every poll with the job as it is. Between polls it blocks on
        the worker's end signal in Redis, so it returns as soon as the job ends; the
        ledger stays the truth, and without Redis it simply polls.
        """
        broker = messages.connect(self.settings.broker_url)
        try:
            return self._follow(job_id, broker, on_metric, on_queued, on_poll, poll_interval)
        finally:
            broker.close()

    def _follow(self, job_id: str, broker: redis.Redis, on_metric: Callable[[MetricRecord], None] | None,
                on_queued: Callable[[], None] | None, on_poll: Callable[[JobRecord], None] | None,
                poll_interval: float) -> JobRecord:
        seen = 0
        while True:
            view = self.get(job_id)
            for metric in view.metrics[seen:]:
                if on_metric is not None:
                    on_metric(metric)
            seen = len(view.metrics)
            if on_poll is not None:
                on_poll(view.job)
            if view.job.status.terminal:
                return view.job
            if view.job.status is JobStatus.QUEUED and on_queued is not None:
                on_queued()
            try:
                messages.wait_done(broker, view.job.id, poll_interval)
            except Exception:  # no broker: the ledger alone tells when the job ends
                time.sleep(poll_interval)

    def workers(self, timeout: float = 1.0) -> list[WorkerInfo]:
        """This ledger's live workers as the registry has them (each rewrites its entry every few seconds), with
        their pool, the jobs they run, their torch threads, the length of their device's queue and their GPU;
        ``timeout``: seconds to wait for the broker."""
        from mlpq.worker import registry

        ledger = self.ledger
        try:
            broker = messages.connect(self.settings.broker_url, timeout)
            try:
                records, dead = registry.live_workers(broker, ledger)
                own_queues = {r.name: [parse_device(r.device, r.pool).queue(ledger, commands=commands)
                                       for commands in ((False, True) if r.commands else (False,))] for r in records}
                queued = registry.queue_lengths(broker, [q for qs in own_queues.values() for q in qs], ledger=ledger,
                                                prune=dead)
            finally:
                broker.close()
        except Exception as exc:  # as in submit_many: any failure here means no broker
            raise self._unreachable(exc) from exc
        found = []
        for record in records:
            gpu = record.gpu or {}
            found.append(WorkerInfo(
                record.name, record.host, record.device, record.pool, record.queues, record.active_jobs,
                sum(queued[queue] for queue in own_queues[record.name]), gpu.get("name"), gpu.get("memory_used_mib"),
                gpu.get("memory_total_mib"), gpu.get("index"), gpu.get("uuid"), record.state, record.concurrency,
                record.threads, record.commands))
        return found

    def serving(self, job: JobRecord, timeout: float = 1.0) -> list[WorkerInfo]:
        """The live workers that consume ``job``'s queue (its device's, in its pool)."""
        queue = job_queue(job.kind, job.device, job.pool, self.ledger)
        return [found for found in self.workers(timeout) if queue in found.queues]

    def dead_letters(self, limit: int = 20) -> DeadLetters:
        """The newest malformed messages that workers took off this ledger's queues, with why."""
        from mlpq.worker.dead_letters import newest

        ledger = self.ledger  # the database's failures are its own, not the broker's
        try:
            with self.celery.connection_for_read() as connection:
                return newest(connection.default_channel.client, ledger, limit)
        except Exception as exc:  # as in submit_many: any failure here means no broker
            raise self._unreachable(exc) from exc

    @cached_property
    def artifact_store(self) -> ArtifactStore:
        """The jobs' files, in the ledger or in ``MLPQ_ARTIFACT_DIR``."""
        return ArtifactStore(self.engine, self.settings.artifact_dir, self.settings.artifact_limit)

    def artifacts(self, id_or_prefix: str) -> list[ArtifactRecord]:
        """The artifacts job ``id_or_prefix`` kept, by name; raises ``JobLookupError``."""
        with self.engine.connect() as connection:
            return list_artifacts(connection, jobs.find_job(connection, id_or_prefix).id)

    def artifact(self, id_or_prefix: str, name: str | None = None) -> ArtifactRecord:
        """Job ``id_or_prefix``'s artifact ``name`` (``None``: its only one); raises ``JobLookupError``,
        ``ArtifactNotFound``, or ``ArtifactChoiceError`` when a job with several is not told which."""
        with self.engine.connect() as connection:
            job_id = jobs.find_job(connection, id_or_prefix).id
            kept = list_artifacts(connection, job_id)
        return artifact_files.choose(job_id, kept, name)

    def download(self, id_or_prefix: str, name: str | None = None, path: Path | None = None, *,
                 force: bool = False) -> tuple[ArtifactRecord, Path]:
        """Write an artifact (see ``artifact``) to ``path`` (a directory: the artifact's name in it; ``None``:
        in the current directory), verified; returns it and where it went. Nothing is written unless the
        SHA-256 matches (``ArtifactCorrupt``); an existing file only with ``force``
        (``DownloadPathError``, as for a path that cannot be written)."""
        record = self.artifact(id_or_prefix, name)
        target = artifact_files.target(record, path, force)
        artifact_files.copy(self.artifact_store, record, target)
        return record, target

    def download_to(self, id_or_prefix: str, name: str | None, out: BinaryIO) -> ArtifactRecord:
        """Write an artifact to ``out`` once verified (it is spooled to a temporary file first)."""
        record = self.artifact(id_or_prefix, name)
        artifact_files.stream(self.artifact_store, record, out)
        return record

    def delete(self, job_ids: Sequence[str] = (), *, sweep: str | None = None) -> list[JobRecord]:
        """Delete finished jobs (by id or prefix, and a sweep's) with their metrics, attempts, logs and
        artifacts, all or none; raises ``JobLookupError``, ``JobNotFinished``, ``NoArtifactDirectory``."""
        with self.engine.connect() as connection:
            found = [jobs.find_job(connection, job_id) for job_id in job_ids]
            if sweep is not None:
                in_sweep = jobs.list_jobs(connection, sweep=sweep, limit=None)
                if not in_sweep:
                    raise JobLookupError(f"no jobs in a sweep {sweep}")
                found += in_sweep
        return delete_finished(self.artifact_store, found)

    def _unreachable(self, exc: Exception) -> BrokerUnavailableError:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return BrokerUnavailableError(f"cannot reach the broker at {mask_url(self.settings.broker_url)}: "
                                      f"{mask_url(first_line)}")

"""Submit and query jobs from Python. The CLI is a thin layer over ``Client``.

Nothing here imports torch, and Celery only when a command talks to the broker.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy.orm import Session, sessionmaker

from mlpq.config import Settings
from mlpq.db import jobs
from mlpq.db.jobs import CancelOutcome
from mlpq.db.schema import Job, JobStatus, Metric
from mlpq.db.session import make_session_factory
from mlpq.models.registry import KINDS, parse_spec
from mlpq.worker.device import parse_device

if TYPE_CHECKING:
    from celery import Celery



class JobRequest(NamedTuple):
    kind: str
    params: Mapping[str, Any]
    device: str = "cpu"
    timeout_s: int | None = None
    """Seconds the job may run; the kind's default when ``None``."""
    rerun_of: str | None = None


class BrokerUnavailableError(ConnectionError):
    """The broker could not be reached; no job was left behind unpublished."""


@dataclass(frozen=True)
class JobView:
    """A job with the metrics of its latest attempt, detached from any session."""

    job: Job
    metrics: Sequence[Metric]


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker as it answered a broadcast, with the length of its device's queue."""

    name: str
    host: str
    device: str
    queues: list[str]
    active_jobs: list[str]
    queued: int
    """Messages waiting in the queue of the worker's own device (not counting the shared ``cuda`` queue)."""
    gpu_name: str | None
    gpu_memory_used_mib: int | None
    gpu_memory_total_mib: int | None
    gpu_index: int | None = None
    """The GPU's index as ``nvidia-smi`` numbers it (NVML's)."""
    gpu_uuid: str | None = None


class Client:
    """Talks to the job ledger and, to submit or list workers, to the broker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.settings.database_url, upgrade=True)

    @cached_property
    def celery(self) -> Celery:
        from mlpq.worker.app import create_app  # Celery is imported only by commands that talk to workers

        return create_app(self.settings)

    @staticmethod
    def validate(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The full validated parameters for ``kind``, with a seed drawn when none is given.

        Raises ``KeyError`` for an unknown kind and pydantic's ``ValidationError``.
        """
        params = dict(params)
        if params.get("seed") is None:
            params["seed"] = secrets.randbelow(2**31)
        return parse_spec(kind, params).model_dump(mode="json")

    def submit(self, kind: str, params: Mapping[str, Any], device: str = "cpu", *,
               timeout_s: int | None = None) -> Job:
        """Submit one job; see ``submit_many``."""
        return self.submit_many([JobRequest(kind, params, device, timeout_s)])[0]

    def submit_many(self, requests: Sequence[JobRequest], *, sweep_id: str | None = None) -> list[Job]:
        """Validate every request, commit their rows in one transaction, then publish their ids.

        Rows are committed before publishing so a worker never looks for a row
        that is not there yet. If the broker cannot be reached, the rows not
        yet published are deleted and ``BrokerUnavailableError`` is raised.
        """
        checked = [(r.kind, self.validate(r.kind, r.params), str(parse_device(r.device)),
                    r.timeout_s or KINDS[r.kind].default_timeout_s, r.rerun_of) for r in requests]
        with self.sessions.begin() as session:
            created = [jobs.create_job(session, kind, params, device, timeout_s=timeout, sweep_id=sweep_id,
                                       rerun_of=rerun_of)
                       for kind, params, device, timeout, rerun_of in checked]
        sent: list[str] = []
        try:
            from mlpq.worker.app import publish

            publish(self.celery, created, sent)
        except Exception as exc:  # kombu and redis raise many types; none leaves a message behind
            with self.sessions.begin() as session:
                for job in created:
                    if job.id not in sent:
                        jobs.delete_job(session, job.id)
            raise self._unreachable(exc) from exc
        return created

    def rerun(self, id_or_prefix: str, device: str | None = None) -> Job:
        """Submit a job's kind, parameters (seed included) and time limit again, on ``device`` or its own."""
        original = self.get(id_or_prefix).job
        return self.submit_many([JobRequest(original.kind, original.params, device or original.device,
                                            original.timeout_s, rerun_of=original.id)])[0]

    def cancel(self, id_or_prefix: str) -> tuple[Job, CancelOutcome]:
        """Cancel a queued job, ask a running one to stop; raises ``JobLookupError``."""
        with self.sessions.begin() as session:
            job = jobs.find_job(session, id_or_prefix)
            outcome = jobs.request_cancel(session, job)
            session.refresh(job)
            return job, outcome

    def get(self, id_or_prefix: str) -> JobView:
        """A job by id or unique prefix with its latest metrics; raises ``JobLookupError``."""
        with self.sessions() as session:
            job = jobs.find_job(session, id_or_prefix)
            return JobView(job, jobs.latest_metrics(session, job))

    def list(self, *, kind: str | None = None, status: str | None = None, device: str | None = None,
             sweep: str | None = None, limit: int = 20) -> Sequence[Job]:
        """The newest jobs first, optionally filtered (``sweep``: a sweep id or a prefix of one)."""
        with self.sessions() as session:
            return jobs.list_jobs(session, kind=kind, status=JobStatus(status) if status else None,
                                  device=str(parse_device(device)) if device else None, sweep=sweep, limit=limit)

    def wait(self, job_id: str, *, on_metric: Callable[[Metric], None] | None = None,
             on_queued: Callable[[], None] | None = None, on_poll: Callable[[Job], None] | None = None,
             poll_interval: float = 0.2) -> Job:
        """Block until the job ends, passing each newly stored metric to ``on_metric``.

        ``on_queued`` is called on every poll that finds the job still queued,
        ``on_poll`` on every poll with the job as it is.
        """
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
            time.sleep(poll_interval)

    def workers(self, timeout: float = 1.0) -> list[WorkerInfo]:
        """Live workers that answer a broadcast within ``timeout`` seconds, with the jobs they run,
        the length of their device's queue and their GPU."""
        from mlpq.worker.status import STATUS_COMMAND

        try:
            replies = self.celery.control.broadcast(STATUS_COMMAND, reply=True, timeout=timeout) or []
            statuses = {name: status for reply in replies for name, status in reply.items()
                        if isinstance(status, dict) and "device" in status}
            with self.celery.connection_for_read() as connection:
                redis = connection.default_channel.client
                queued = {device: redis.llen(parse_device(device).queue)
                          for device in {status["device"] for status in statuses.values()}}
        except Exception as exc:  # as in submit_many: any failure here means no broker
            raise self._unreachable(exc) from exc
        found = []
        for name, status in sorted(statuses.items()):
            gpu = status.get("gpu") or {}
            found.append(WorkerInfo(
                name, name.partition("@")[2], status["device"], status["queues"], status["active_jobs"],
                queued[status["device"]], gpu.get("name"), gpu.get("memory_used_mib"), gpu.get("memory_total_mib"),
                gpu.get("index"), gpu.get("uuid")))
        return found

    def _unreachable(self, exc: Exception) -> BrokerUnavailableError:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return BrokerUnavailableError(f"cannot reach the broker at {self.settings.broker_url}: {first_line}")

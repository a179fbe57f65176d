"""Job state transitions and queries. Functions take a ``Session``; the caller owns the transaction.

Every transition is a conditional UPDATE on the current status, so a duplicate
delivery cannot run a job twice and a terminal status never changes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from mlpq.db.schema import Job, JobStatus, Metric, utcnow

JOB_ID_PATTERN = re.compile(r"[0-9a-f]{4,32}")


class JobLookupError(LookupError):
    """No job, or more than one, matches an id prefix."""


def new_job_id() -> str:
    return uuid.uuid4().hex


def create_job(session: Session, kind: str, params: Mapping[str, Any], device: str) -> Job:
    """Add a queued job; it is visible to workers once the caller commits."""
    job = Job(id=new_job_id(), kind=kind, params=dict(params), device=device, status=JobStatus.QUEUED)
    session.add(job)
    session.flush()
    return job


def delete_job(session: Session, job_id: str) -> None:
    session.execute(delete(Job).where(Job.id == job_id))


def is_job_id(text: str) -> bool:
    """Whether ``text`` is shaped like a job id or a prefix of one (4 to 32 hex digits)."""
    return JOB_ID_PATTERN.fullmatch(text) is not None


def find_job(session: Session, id_or_prefix: str) -> Job:
    """The one job whose id starts with ``id_or_prefix``; raises ``JobLookupError``."""
    matches = session.scalars(select(Job).where(Job.id.startswith(id_or_prefix, autoescape=True)).limit(2)).all()
    if not matches:
        raise JobLookupError(f"no job {id_or_prefix}")
    if len(matches) > 1:
        raise JobLookupError(f"job id prefix {id_or_prefix} is ambiguous: give more digits")
    return matches[0]


def list_jobs(
    session: Session, *, kind: str | None = None, status: JobStatus | None = None,
    device: str | None = None, limit: int = 20,
) -> Sequence[Job]:
    """The newest jobs first, optionally filtered."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
    if kind:
        query = query.where(Job.kind == kind)
    if status:
        query = query.where(Job.status == status)
    if device:
        query = query.where(Job.device == device)
    return session.scalars(query).all()


def claim_job(session: Session, job_id: str, worker_host: str) -> Job | None:
    """queued → running, counting the attempt; ``None`` if the job is not queued (already taken or ended)."""
    now = utcnow()
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.RUNNING, attempts=Job.attempts + 1, started_at=now,
                heartbeat_at=now, worker_host=worker_host, finished_at=None, error=None)
    ).rowcount
    return session.get(Job, job_id, populate_existing=True) if claimed else None


def add_metrics(session: Session, job_id: str, attempt: int, rows: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
    """Store reported steps in one batched INSERT."""
    values = [{"job_id": job_id, "attempt": attempt, "step": step, "values": dict(v)} for step, v in rows]
    if values:
        session.execute(insert(Metric), values)


def latest_metrics(session: Session, job: Job) -> Sequence[Metric]:
    """The metrics of the job's latest attempt, by step."""
    return session.scalars(
        select(Metric).where(Metric.job_id == job.id, Metric.attempt == job.attempts).order_by(Metric.step)
    ).all()


def finish_job(session: Session, job_id: str, status: JobStatus, *, result: Mapping[str, Any] | None = None,
               error: str | None = None) -> bool:
    """running → a terminal status with its result or error; ``False`` if the job was not running."""
    return bool(session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
        .values(status=status, finished_at=utcnow(), result=dict(result) if result is not None else None,
                error=error)
    ).rowcount)


def count_jobs(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Job)) or 0

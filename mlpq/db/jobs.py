"""Job state transitions and queries. Functions take a ``Connection``; the caller owns the transaction.

Every transition is a conditional UPDATE on the current status (and, for a
running job, on its attempt number), so a duplicate delivery cannot run a job
twice, a presumed-lost run cannot overwrite its successor, and a terminal
status never changes.
"""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, null, select, update

from mlpq.db.clock import db_now, read_db_now
from mlpq.db.lookup import JobLookupError
from mlpq.db.records import AttemptRecord, JobRecord, MetricRecord
from mlpq.db.schema import ARTIFACTS, ATTEMPTS, JOBS, METRICS
from mlpq.db.status import TERMINAL, JobStatus

JOB, METRIC, ATTEMPT = JOBS.c, METRICS.c, ATTEMPTS.c


def new_job_id() -> str:
    return uuid.uuid4().hex


def create_job(connection: Connection, kind: str, params: Mapping[str, Any], device: str, *, timeout_s: int,
               pool: str | None = None, sweep_id: str | None = None, rerun_of: str | None = None,
               batch_id: str | None = None) -> JobRecord:
    """Add a job: queued, visible to workers once the caller commits; with a ``batch_id``, ``submitting``
    until ``release_batch`` releases its whole batch."""
    status = JobStatus.SUBMITTING if batch_id else JobStatus.QUEUED
    return JobRecord.from_row(connection.execute(
        insert(JOBS).values(id=new_job_id(), kind=kind, params=dict(params), device=device, pool=pool,
                            status=status, timeout_s=timeout_s, sweep_id=sweep_id, rerun_of=rerun_of,
                            batch_id=batch_id)
        .returning(*JOBS.c)).one())


def release_batch(connection: Connection, batch_id: str) -> list[JobRecord]:
    """submitting → queued for every job of the batch that is still submitting; returns them.

    The caller compares the count with the batch's size and rolls back on a
    difference (a member was withdrawn or cancelled meanwhile): a batch is
    released whole or not at all.
    """
    return [JobRecord.from_row(row) for row in connection.execute(
        update(JOBS).where(JOB.batch_id == batch_id, JOB.status == JobStatus.SUBMITTING)
        .values(status=JobStatus.QUEUED, queued_at=db_now()).returning(*JOBS.c))]


def touch_batch(connection: Connection, batch_id: str) -> None:
    """Note that the batch's submit is still publishing it: ``withdraw_abandoned`` counts its age from now."""
    connection.execute(update(JOBS).where(JOB.batch_id == batch_id, JOB.status == JobStatus.SUBMITTING)
                       .values(queued_at=db_now()))


def withdraw_batch(connection: Connection, batch_id: str) -> int:
    """Delete the batch's jobs that are still submitting (none of them ever ran: a worker that takes one of
    their messages finds no job); returns how many."""
    return connection.execute(
        delete(JOBS).where(JOB.batch_id == batch_id, JOB.status == JobStatus.SUBMITTING)).rowcount


def batch_jobs(connection: Connection, batch_id: str) -> list[JobRecord]:
    """The batch's jobs, in the order they were created."""
    return [JobRecord.from_row(row) for row in connection.execute(
        select(JOBS).where(JOB.batch_id == batch_id).order_by(JOB.created_at, JOB.id))]


ABANDONED = "withdrawn: its submit never finished"


def withdraw_abandoned(connection: Connection, age: timedelta, job_id: str | None = None) -> list[str]:
    """Cancel jobs (or job ``job_id``) left ``submitting`` for longer than ``age`` by a submit that never
    released them (it was killed, or lost the database), counting from when their submit was last heard of
    (``touch_batch``); returns their ids. That submit, should it come back,
    finds its batch changed and releases none of it."""
    query = update(JOBS).where(JOB.status == JobStatus.SUBMITTING, JOB.queued_at < db_now(-age))
    if job_id is not None:
        query = query.where(JOB.id == job_id)
    return list(connection.scalars(
        query.values(status=JobStatus.CANCELLED, finished_at=db_now(), error=ABANDONED).returning(JOB.id)))


def job_status(connection: Connection, job_id: str) -> JobStatus | None:
    """The job's status; ``None`` for an unknown job."""
    status = connection.scalar(select(JOB.status).where(JOB.id == job_id))
    return JobStatus(status) if status is not None else None


def delete_job(connection: Connection, job_id: str) -> None:
    connection.execute(delete(JOBS).where(JOB.id == job_id))


def find_job(connection: Connection, id_or_prefix: str) -> JobRecord:
    """The one job whose id starts with ``id_or_prefix``; raises ``JobLookupError``."""
    matches = connection.execute(
        select(JOBS).where(JOB.id.startswith(id_or_prefix, autoescape=True)).limit(2)).all()
    if not matches:
        raise JobLookupError(f"no job {id_or_prefix}")
    if len(matches) > 1:
        raise JobLookupError(f"job id prefix {id_or_prefix} is ambiguous: give more digits")
    return JobRecord.from_row(matches[0])


def list_jobs(
    connection: Connection, *, kind: str | None = None, status: JobStatus | None = None,
    device: str | None = None, sweep: str | None = None, limit: int | None = 20, offset: int = 0,
    order_by: str = "created_at", descending: bool = True,
) -> list[JobRecord]:
    """Jobs by the column ``order_by`` (by default the newest first; rows without a value last, ties by id),
    optionally filtered, skipping the first ``offset``, at most ``limit`` (``None``: all); ``sweep`` is a sweep
    id or a prefix of one."""
    column = JOBS.c[order_by]
    order = column.desc() if descending else column.asc()
    if column.nullable:  # only there: NULLS LAST on created_at would keep PostgreSQL from reading its index
        order = order.nulls_last()
    query = select(JOBS).order_by(order, JOB.id).limit(limit).offset(offset)
    if kind:
        query = query.where(JOB.kind == kind)
    if sweep:
        query = query.where(JOB.sweep_id.startswith(sweep, autoescape=True))
    if status:
        query = query.where(JOB.status == status)
    if device:
        query = query.where(JOB.device == device)
    return [JobRecord.from_row(row) for row in connection.execute(query)]


def claim_job(connection: Connection, job_id: str, worker_host: str) -> JobRecord | None:
    """queued → running as a new attempt, with its row in ``attempts``; ``None`` if the job is not queued
    (taken, ended or unknown)."""
    now = db_now()
    row = connection.execute(
        update(JOBS)
        .where(JOB.id == job_id, JOB.status == JobStatus.QUEUED)
        .values(status=JobStatus.RUNNING, attempts=JOB.attempts + 1, started_at=now,
                heartbeat_at=now, worker_host=worker_host, finished_at=None, error=None)
        .returning(*JOBS.c)
    ).one_or_none()
    if row is None:
        return None
    job = JobRecord.from_row(row)
    connection.execute(insert(ATTEMPTS).values(job_id=job_id, attempt=job.attempts, worker_host=worker_host,
                                               started_at=now))
    return job


def end_attempt(connection: Connection, job_id: str, attempt: int, outcome: str) -> None:
    """Say how the attempt ended (``succeeded``, ``worker lost``, ``lease lost``, …)."""
    connection.execute(update(ATTEMPTS).where(ATTEMPT.job_id == job_id, ATTEMPT.attempt == attempt)
                       .values(ended_at=db_now(), outcome=outcome))


def note_resumed(connection: Connection, job_id: str, attempt: int, step: int) -> None:
    """Say that the attempt goes on from a checkpoint, at ``step``."""
    connection.execute(update(ATTEMPTS).where(ATTEMPT.job_id == job_id, ATTEMPT.attempt == attempt)
                       .values(resumed_at_step=step))


def attempts_of(connection: Connection, job_id: str) -> list[AttemptRecord]:
    """The job's attempts, first to last, each with the first and last steps it reported."""
    steps = (select(METRIC.attempt, func.min(METRIC.step).label("first"), func.max(METRIC.step).label("last"))
             .where(METRIC.job_id == job_id).group_by(METRIC.attempt).subquery())
    return [AttemptRecord(*row) for row in connection.execute(
        select(ATTEMPT.attempt, ATTEMPT.worker_host, ATTEMPT.started_at, ATTEMPT.ended_at, ATTEMPT.outcome,
               ATTEMPT.resumed_at_step, steps.c.first, steps.c.last)
        .outerjoin(steps, steps.c.attempt == ATTEMPT.attempt)
        .where(ATTEMPT.job_id == job_id).order_by(ATTEMPT.attempt))]


def _running(job_id: str, attempt: int) -> Any:
    return (JOB.id == job_id) & (JOB.status == JobStatus.RUNNING) & (JOB.attempts == attempt)


@dataclass(frozen=True)
class Heartbeat:
    """What a running attempt learns when it renews its lease."""

    owned: bool
    """False when the job is no longer this attempt's (reaped, cancelled while lost, ended)."""
    cancel_requested: bool
    stop_as: JobStatus = JobStatus.CANCELLED
    """The status a requested stop ends the job in."""


def heartbeat(connection: Connection, job_id: str, attempt: int) -> Heartbeat:
    """Renew the lease of a running attempt and read whether a stop was asked for, and as what."""
    owned = connection.execute(update(JOBS).where(_running(job_id, attempt)).values(heartbeat_at=db_now())).rowcount
    cancel, stop_as = connection.execute(
        select(JOB.cancel_requested, JOB.stop_as).where(JOB.id == job_id)).one_or_none() or (False, None)
    return Heartbeat(bool(owned), bool(cancel), stopped_status(stop_as))


def stopped_status(stop_as: str | None) -> JobStatus:
    """The terminal status a stop request ends a job in: ``stop_as``'s, else ``cancelled``."""
    return JobStatus(stop_as) if stop_as else JobStatus.CANCELLED


def add_metrics(connection: Connection, job_id: str, attempt: int,
                rows: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
    """Store reported steps in one batched INSERT; a step this attempt already stored is left as it is.

    So a transaction retried after its commit went through (the connection
    failed before the reply came) cannot store a step twice.
    """
    values = [{"job_id": job_id, "attempt": attempt, "step": step, "values": dict(v)} for step, v in rows]
    if values:
        # Imported here: the PostgreSQL dialect package costs every CLI command ~45 ms to import.
        if connection.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as insert_new
        else:
            from sqlalchemy.dialects.sqlite import insert as insert_new
        connection.execute(insert_new(METRICS).on_conflict_do_nothing(), values)


def latest_metrics(connection: Connection, job: JobRecord) -> list[MetricRecord]:
    """The job's metrics as one curve, by step: each attempt's steps below the first step a later attempt
    reported (so a resumed attempt continues its predecessor's curve, and one that started over replaces it).

    Every attempt's metrics stay in the table; this only chooses among them.
    """
    kept: dict[int, dict[str, Any]] = {}
    below, attempt_seen, first = math.inf, None, math.inf
    for attempt, step, values in connection.execute(
            select(METRIC.attempt, METRIC.step, METRIC["values"]).where(METRIC.job_id == job.id)
            .order_by(METRIC.attempt.desc(), METRIC.step)):
        if attempt != attempt_seen:  # an earlier attempt: only its steps below the later ones' first count
            below, attempt_seen, first = min(below, first), attempt, step
        if step < below:
            kept[step] = values
    return [MetricRecord(step, kept[step]) for step in sorted(kept)]


def finish_job(connection: Connection, job_id: str, attempt: int, status: JobStatus, *,
               result: Mapping[str, Any] | None = None, error: str | None = None,
               provenance: Mapping[str, Any] | None = None) -> bool:
    """This attempt: running → a terminal status; ``False`` if the job is no longer this attempt's.

    No result is SQL NULL (``null()``): a plain ``None`` would store JSON ``null``. The attempt's row says
    how it ended.
    """
    finished = bool(connection.execute(
        update(JOBS).where(_running(job_id, attempt)).values(
            status=status, finished_at=db_now(), result=dict(result) if result is not None else null(),
            error=error, provenance=dict(provenance) if provenance is not None else null())
    ).rowcount)
    if finished:
        end_attempt(connection, job_id, attempt, status.value)
    return finished


class CancelOutcome(str, enum.Enum):
    CANCELLED = "cancelled"
    REQUESTED = "cancel requested"
    """Running: the job stops at its next step or epoch check."""
    ALREADY_ENDED = "already ended"


STOP_STATUSES = (JobStatus.CANCELLED, JobStatus.PRUNED)


def request_cancel(connection: Connection, job: JobRecord,
                   stop_as: JobStatus = JobStatus.CANCELLED) -> CancelOutcome:
    """Stop a queued (or submitting) job now, ask a running one to stop; a finished job stays as it is.

    The job ends ``stop_as``: ``cancelled``, or ``pruned`` (a tuning study's pruner stopped it), keeping the
    metrics it stored. Cancelling a member of a batch still being submitted makes its submit release none of
    the batch.
    """
    if stop_as not in STOP_STATUSES:
        raise ValueError(f"a stop ends a job cancelled or pruned, not {stop_as.value}")
    stored = stop_as.value if stop_as is not JobStatus.CANCELLED else None
    if connection.execute(update(JOBS).where(
            JOB.id == job.id, JOB.status.in_([JobStatus.QUEUED, JobStatus.SUBMITTING])).values(
            status=stop_as, cancel_requested=True, stop_as=stored, finished_at=db_now(),
            error=f"{stop_as.value} before it started")).rowcount:
        return CancelOutcome.CANCELLED
    if connection.execute(update(JOBS).where(JOB.id == job.id, JOB.status == JobStatus.RUNNING).values(
            cancel_requested=True, stop_as=stored)).rowcount:
        return CancelOutcome.REQUESTED
    return CancelOutcome.ALREADY_ENDED


WORKER_LOST, LEASE_LOST = "worker lost", "lease lost"
"""How an attempt whose lease expired ended: its worker was not heard of again, or it was, too late."""


def requeue_expired(connection: Connection, *, lease: timedelta, max_attempts: int,
                    grace: timedelta) -> list[JobRecord]:
    """End or requeue running jobs whose lease expired; returns the requeued ones (to publish again).

    A lost job is cancelled if a cancel was asked for, failed as "time limit"
    past its timeout, failed as "worker lost" at the attempt cap, and queued
    again otherwise; its attempt ends as ``worker lost`` (``lease lost`` once it
    turns out to have been alive: see ``end_attempt``). Rows are locked with
    SKIP LOCKED where the database has it.
    """
    now = read_db_now(connection)
    expired = [(JobRecord.from_row(row), row.stop_as) for row in connection.execute(
        select(JOBS).where(JOB.status == JobStatus.RUNNING, JOB.heartbeat_at < now - lease)
        .with_for_update(skip_locked=True))]
    requeued = []
    for job, stop_as in expired:
        change: dict[str, Any] = {"finished_at": now}
        if job.cancel_requested:
            stopped = stopped_status(stop_as)
            change.update(status=stopped, error=f"{stopped.value} (its worker was lost)")
        elif job.started_at and job.started_at + timedelta(seconds=job.timeout_s) + grace < now:
            change.update(status=JobStatus.FAILED, error=f"time limit: exceeded {job.timeout_s} s")
        elif job.attempts >= max_attempts:
            change.update(status=JobStatus.FAILED, error=f"worker lost: gave up after {job.attempts} attempts")
        else:
            change.update(status=JobStatus.QUEUED, finished_at=None, queued_at=now)
            requeued.append(replace(job, **change))
        connection.execute(update(JOBS).where(JOB.id == job.id).values(**change))
        end_attempt(connection, job.id, job.attempts, WORKER_LOST)
    return requeued


def ended_with_checkpoint(connection: Connection) -> list[str]:
    """Jobs that ended but still have a checkpoint: ended without their worker (lost at the attempt cap, past
    their time limit, cancelled while lost or queued again), or their worker could not remove it."""
    return list(connection.scalars(
        select(ARTIFACTS.c.job_id).join(JOBS, JOB.id == ARTIFACTS.c.job_id)
        .where(ARTIFACTS.c.role == "checkpoint", JOB.status.in_(TERMINAL)).distinct()))


def queued_for(connection: Connection, age: timedelta) -> list[JobRecord]:
    """Jobs that have been queued for longer than ``age`` by the database's clock."""
    return [JobRecord.from_row(row) for row in connection.execute(
        select(JOBS).where(JOB.status == JobStatus.QUEUED, JOB.queued_at < db_now(-age)))]


def mark_queued_now(connection: Connection, job_ids: Iterable[str]) -> None:
    connection.execute(update(JOBS).where(JOB.id.in_(list(job_ids))).values(queued_at=db_now()))

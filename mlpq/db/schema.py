"""Tables: the ledger's identity, one row per job, one row per reported step or epoch."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from mlpq.db.clock import UTCDateTime, db_now
from mlpq.db.status import JobStatus


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Ledger(Base):
    """One row, written by the migration that creates the schema: which ledger this is.

    Queue names carry it, so a worker only takes its own ledger's jobs, and a
    worker notices when its database was replaced (a new identity, or none).
    """

    __tablename__ = "ledger"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __mapper_args__ = {"eager_defaults": True}  # read queued_at back from the INSERT

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        index=True,
    )
    device: Mapped[str] = mapped_column(String(16), index=True)
    pool: Mapped[str | None] = mapped_column(String(32))
    """The pool of hosts that must run the job (``mlpq submit --pool``); ``None``: hosts outside any pool."""
    params: Mapped[dict[str, Any]]
    timeout_s: Mapped[int]
    sweep_id: Mapped[str | None] = mapped_column(String(32), index=True)
    rerun_of: Mapped[str | None] = mapped_column(String(32))
    """The job this one repeats (``mlpq rerun``): same kind, parameters and seed."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    queued_at: Mapped[datetime] = mapped_column(default=db_now())
    """When the job last became queued (the database's clock): the reconciler re-publishes jobs queued long
    ago but absent from Redis."""
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    worker_host: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[dict[str, Any] | None]
    """What produced the result: versions, device name, host, git commit."""

    metrics: Mapped[list[Metric]] = relationship(
        back_populates="job", order_by="Metric.step", cascade="all, delete-orphan", passive_deletes=True
    )


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("uq_metrics_job_attempt_step", "job_id", "attempt", "step", unique=True),)
    """A step is stored once per attempt, however often a commit is retried."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int]
    step: Mapped[int]
    values: Mapped[dict[str, Any]]

    job: Mapped[Job] = relationship(back_populates="metrics")

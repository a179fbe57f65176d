"""Plain, frozen copies of ledger rows: what leaves ``mlpq.db`` (no SQLAlchemy objects, no sessions)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mlpq.db.status import JobStatus


@dataclass(frozen=True)
class JobRecord:
    """One job as the ledger holds it."""

    id: str
    kind: str
    status: JobStatus
    device: str
    pool: str | None
    params: dict[str, Any]
    timeout_s: int
    sweep_id: str | None
    rerun_of: str | None
    batch_id: str | None
    created_at: datetime
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker_host: str | None
    attempts: int
    cancel_requested: bool
    result: dict[str, Any] | None
    error: str | None
    provenance: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Any) -> JobRecord:
        """From a row of the ``jobs`` table (all its columns)."""
        values: Mapping[str, Any] = row._mapping
        return cls(**{field.name: values[field.name] for field in JOB_FIELDS})

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return ((self.finished_at or datetime.now(timezone.utc)) - self.started_at).total_seconds()


JOB_FIELDS = fields(JobRecord)


@dataclass(frozen=True)
class MetricRecord:
    """What one step (or epoch) of a job's attempt reported."""

    step: int
    values: dict[str, Any]


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of a job: where it ran, how it ended (``None`` while running), the step it resumed at
    (``None``: it started from the beginning) and the first and last steps it reported (``None``: none)."""

    attempt: int
    worker_host: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    resumed_at_step: int | None
    first_step: int | None
    last_step: int | None

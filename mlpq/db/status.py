"""A job's status (no SQLAlchemy import: the CLI's options and output use it)."""

from __future__ import annotations

import enum


class JobStatus(str, enum.Enum):
    SUBMITTING = "submitting"
    """Created by a submit that has not released it yet: no worker may claim it (see ``jobs.release_batch``)."""
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PRUNED = "pruned"
    """Stopped early by a tuning study's pruner (``mlpq tune``); its metrics stay."""

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.PRUNED})

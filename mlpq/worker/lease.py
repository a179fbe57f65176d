"""Leases of running jobs: one thread per worker process renews the heartbeat of the job it runs,
and notices cancel requests and lost ownership."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from mlpq.db import jobs
from mlpq.db.status import JobStatus

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """A stop was requested for the running job; it ends in ``status`` (cancelled, or pruned)."""

    def __init__(self, job_id: str, status: JobStatus = JobStatus.CANCELLED) -> None:
        super().__init__(job_id)
        self.status = status


class JobLost(Exception):
    """The job is no longer this attempt's: its lease expired and it was requeued or ended."""


@dataclass
class Lease:
    """One attempt's lease; job code calls ``check()`` between steps."""

    job_id: str
    attempt: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    stop_as: JobStatus = JobStatus.CANCELLED

    def check(self) -> None:
        """Raise ``JobLost`` or ``JobCancelled`` if the job should stop."""
        if self.lost.is_set():
            raise JobLost(self.job_id)
        if self.cancelled.is_set():
            raise JobCancelled(self.job_id, self.stop_as)


class LeaseKeeper(threading.Thread):
    """Renews the current lease every ``interval`` seconds. Started once per process, not per job."""

    def __init__(self, engine: Engine, interval: float) -> None:
        super().__init__(name="lease-keeper", daemon=True)
        self.engine, self.interval = engine, interval
        self.current: Lease | None = None
        self._wake = threading.Event()

    def hold(self, job_id: str, attempt: int) -> Lease:
        """Keep ``job_id``'s lease from now on (a process runs one job at a time)."""
        self.current = Lease(job_id, attempt)
        if not self.is_alive():
            self.start()
        return self.current

    def release(self) -> None:
        self.current = None

    def run(self) -> None:
        while not self._wake.wait(self.interval):
            lease = self.current
            if lease is not None:
                self.renew(lease)

    def renew(self, lease: Lease) -> None:
        try:
            with self.engine.begin() as connection:
                beat = jobs.heartbeat(connection, lease.job_id, lease.attempt)
        except SQLAlchemyError as exc:  # the database may come back before the lease runs out
            log.warning("job %s: heartbeat failed: %s", lease.job_id, str(exc).splitlines()[0])
            return
        if not beat.owned:
            lease.lost.set()
        if beat.cancel_requested:
            lease.stop_as = beat.stop_as
            lease.cancelled.set()

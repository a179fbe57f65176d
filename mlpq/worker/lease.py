"""A running job's lease: a thread renews its heartbeat and notices cancel requests and lost ownership."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mlpq.db import jobs

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """A cancel was requested for the running job."""


class JobLost(Exception):
    """The job is no longer this attempt's: its lease expired and it was requeued or ended."""


class Lease(threading.Thread):
    """Renews ``heartbeat_at`` every ``interval`` seconds until stopped; job code calls ``check()``."""

    def __init__(self, sessions: sessionmaker[Session], job_id: str, attempt: int, interval: float) -> None:
        super().__init__(name=f"lease-{job_id[:8]}", daemon=True)
        self.sessions, self.job_id, self.attempt, self.interval = sessions, job_id, attempt, interval
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                with self.sessions.begin() as session:
                    beat = jobs.heartbeat(session, self.job_id, self.attempt)
            except SQLAlchemyError as exc:  # the database may come back before the lease runs out
                log.warning("job %s: heartbeat failed: %s", self.job_id, str(exc).splitlines()[0])
                continue
            if not beat.owned:
                self.lost.set()
            if beat.cancel_requested:
                self.cancelled.set()

    def stop(self) -> None:
        self._stop_event.set()

    def check(self) -> None:
        """Raise ``JobLost`` or ``JobCancelled`` if the job should stop."""
        if self.lost.is_set():
            raise JobLost(self.job_id)
        if self.cancelled.is_set():
            raise JobCancelled(self.job_id)

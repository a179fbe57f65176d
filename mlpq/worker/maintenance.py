"""Run by every worker on a timer: requeue jobs whose lease expired, re-publish jobs the broker lost.

One worker at a time does a round (a Redis lock); the guarded transitions in
the ledger make a duplicate publish harmless anyway.

While the database is away, live runs cannot renew their leases either. So a
worker reaps only once its own maintenance has reached the database promptly
for a full lease: by then every live run has renewed its heartbeat, and only
runs that are really gone look expired.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import timedelta
from typing import Any

import redis
from celery import Celery, bootsteps
from sqlalchemy.orm import Session

from mlpq.config import Settings
from mlpq.db import jobs
from mlpq.db.clock import read_db_now
from mlpq.db.session import make_session_factory
from mlpq.worker.app import publish
from mlpq.worker.device import QUEUE_PREFIX

log = logging.getLogger(__name__)

LOCK_KEY = "mlpq:maintenance"


def task_ids_waiting(client: redis.Redis) -> set[str]:
    """Ids of the tasks waiting in mlpq's queues.

    Messages delivered but not acknowledged (kombu's ``unacked`` hash) do not
    count: their consumer claims a job as soon as it reserves its message, so a
    job still queued a lease after its message was reserved lost its consumer,
    and kombu would restore the message only after the 48 h visibility timeout.
    """
    ids = set()
    for key in client.scan_iter(match=f"{QUEUE_PREFIX}*"):
        if client.type(key) != b"list":
            continue
        for message in client.lrange(key, 0, -1):
            payload: dict[str, Any] = json.loads(message)
            task_id = payload.get("headers", {}).get("id")
            if task_id is None and payload.get("body"):
                task_id = json.loads(base64.b64decode(payload["body"]))[0][0]
            ids.add(task_id)
    return ids


class Maintenance:
    """The reaper and the reconciler."""

    def __init__(self, app: Celery, settings: Settings, node: str) -> None:
        self.app, self.node, self.leases = app, node, settings.leases
        self.sessions = make_session_factory(settings.database_url, pooled=False)  # nothing open across forks
        self.connected_since: float | None = None
        """Since when (monotonic) every look at the database got through promptly; ``None`` while it fails."""

    @property
    def slow_s(self) -> float:
        """A transaction that waits longer than this to start means the database was away (or locked)
        for long enough to delay heartbeats."""
        return self.leases.lease_s / 3

    def tick(self) -> None:
        """One round; errors are logged, never raised into the worker's event loop."""
        try:
            with self.sessions.begin() as session:  # on SQLite, BEGIN IMMEDIATE: it waits as a heartbeat would
                self.note_reached(session, time.monotonic())
            if self._take_lock():
                self.requeue_expired()
                self.republish_missing()
        except Exception:
            log.exception("maintenance round failed")

    def _take_lock(self) -> bool:
        with self.app.connection_for_write() as connection:
            client = connection.default_channel.client
            return bool(client.set(LOCK_KEY, self.node, nx=True, ex=max(1, int(self.leases.maintenance_s))))

    def note_reached(self, session: Session, began: float) -> bool:
        """Record that the database answered a transaction begun at ``began``; whether it has answered
        promptly for a full lease. A failure to answer resets the count."""
        try:
            read_db_now(session)
        except Exception:
            self.connected_since = None
            raise
        now = time.monotonic()
        if self.connected_since is None or now - began > self.slow_s:
            self.connected_since = now
        return now - self.connected_since >= self.leases.lease_s

    def requeue_expired(self) -> None:
        with self.sessions.begin() as session:
            if not self.note_reached(session, time.monotonic()):
                log.debug("not reaping: the database has not been reachable for a full lease yet")
                return
            requeued = jobs.requeue_expired(session, lease=timedelta(seconds=self.leases.lease_s),
                                            max_attempts=self.leases.max_attempts,
                                            grace=timedelta(seconds=self.leases.hard_limit_grace_s))
        if requeued:
            log.warning("lease expired, requeued: %s", ", ".join(job.id for job in requeued))
            publish(self.app, requeued)

    def republish_missing(self) -> None:
        with self.sessions() as session:
            stale = jobs.queued_for(session, timedelta(seconds=self.leases.lease_s))
        if not stale:
            return
        with self.app.connection_for_read() as connection:
            present = task_ids_waiting(connection.default_channel.client)
        missing = [job for job in stale if job.id not in present]
        if missing:
            log.warning("queued but missing from the broker, re-published: %s", ", ".join(j.id for j in missing))
            publish(self.app, missing)
            with self.sessions.begin() as session:
                jobs.mark_queued_now(session, [job.id for job in missing])


def install(app: Celery, maintenance: Maintenance, interval: float) -> None:
    """Run ``maintenance.tick`` every ``interval`` seconds in the worker's main process (its timer)."""

    class MaintenanceStep(bootsteps.StartStopStep):
        requires = {"celery.worker.components:Timer"}

        def start(self, worker: Any) -> None:
            self.timer_entry = worker.timer.call_repeatedly(interval, maintenance.tick)

        def stop(self, worker: Any) -> None:
            entry = getattr(self, "timer_entry", None)
            if entry is not None:
                entry.cancel()

    app.steps["worker"].add(MaintenanceStep)

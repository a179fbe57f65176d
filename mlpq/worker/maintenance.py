"""Run by every worker on a timer: requeue jobs whose lease expired, re-publish jobs the broker lost.

One worker at a time does a round (a Redis lock); the guarded transitions in
the ledger make a duplicate publish harmless anyway.
"""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from datetime import timedelta
from typing import Any

import redis
from celery import Celery, bootsteps

from mlpq.config import Settings
from mlpq.db import jobs
from mlpq.db.schema import utcnow
from mlpq.db.session import make_session_factory
from mlpq.worker.app import publish
from mlpq.worker.messages import HARD_LIMIT_GRACE_S
from mlpq.worker.device import QUEUE_PREFIX
from mlpq.worker.screening import MalformedMessage, job_id_of, read_message

log = logging.getLogger(__name__)

LOCK_KEY = "mlpq:maintenance"
UNACKED_KEY = "unacked"
"""kombu's Redis transport keeps delivered, unacknowledged messages in this hash."""


def task_ids_in_broker(client: redis.Redis) -> set[str]:
    """Ids of the jobs waiting in mlpq's queues or delivered and not yet acknowledged.

    A malformed message counts for no job (a worker will dead-letter it).
    """
    ids = set()
    for key in client.scan_iter(match=f"{QUEUE_PREFIX}*"):
        if client.type(key) == b"list":
            for raw in client.lrange(key, 0, -1):
                with suppress(MalformedMessage):
                    ids.add(read_message(raw))
    for entry in client.hvals(UNACKED_KEY):  # kombu's own [message, exchange, routing key]
        with suppress(MalformedMessage, ValueError, IndexError, TypeError):
            ids.add(job_id_of(json.loads(entry)[0]))
    return ids


class Maintenance:
    """The reaper and the reconciler."""

    def __init__(self, app: Celery, settings: Settings, node: str) -> None:
        self.app, self.node, self.leases = app, node, settings.leases
        self.sessions = make_session_factory(settings.database_url, pooled=False)  # nothing open across forks

    def tick(self) -> None:
        """One round; errors are logged, never raised into the worker's event loop."""
        try:
            if self._take_lock():
                self.requeue_expired()
                self.republish_missing()
        except Exception:
            log.exception("maintenance round failed")

    def _take_lock(self) -> bool:
        with self.app.connection_for_write() as connection:
            client = connection.default_channel.client
            return bool(client.set(LOCK_KEY, self.node, nx=True, ex=max(1, int(self.leases.maintenance_s))))

    def requeue_expired(self) -> None:
        with self.sessions.begin() as session:
            requeued = jobs.requeue_expired(session, lease=timedelta(seconds=self.leases.lease_s),
                                            max_attempts=self.leases.max_attempts,
                                            grace=timedelta(seconds=HARD_LIMIT_GRACE_S))
        if requeued:
            log.warning("lease expired, requeued: %s", ", ".join(job.id for job in requeued))
            publish(self.app, requeued)

    def republish_missing(self) -> None:
        cutoff = utcnow() - timedelta(seconds=self.leases.lease_s)
        with self.sessions() as session:
            stale = jobs.queued_before(session, cutoff)
        if not stale:
            return
        with self.app.connection_for_read() as connection:
            present = task_ids_in_broker(connection.default_channel.client)
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

"""Run by every worker on a timer: check the ledger, requeue jobs whose lease expired, re-publish jobs the
broker lost, withdraw jobs whose submit died before releasing them.

Every worker checks on every round that its ledger is still the one it started
on, at the schema it knows; if not, it stops consuming (``LedgerChanged``).
One worker at a time does the rest of a round (a Redis lock per ledger); the
guarded transitions in the ledger make a duplicate publish harmless anyway.

While the database is away, live runs cannot renew their leases either. So a
worker reaps only once its own maintenance has reached the database promptly
for a full lease: by then every live run has renewed its heartbeat, and only
runs that are really gone look expired.
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from datetime import timedelta
from typing import Any

import redis
from celery import Celery, bootsteps
from celery.exceptions import WorkerShutdown, WorkerTerminate
from sqlalchemy import Connection

from mlpq import messages
from mlpq.config import Settings
from mlpq.db import jobs
from mlpq.db.artifacts import ArtifactStore
from mlpq.db.ledger import LedgerChanged, ledger_change
from mlpq.db.migrate import SchemaError, check_schema
from mlpq.db.clock import read_db_now
from mlpq.db.engine import make_engine
from mlpq.db.records import JobRecord
from mlpq.devices import ledger_queue_prefix
from mlpq.locations import sqlite_file
from mlpq.worker.logs import Outage
from mlpq.worker.screening import MalformedMessage, read_message

log = logging.getLogger(__name__)


def lock_key(ledger: str) -> str:
    """The Redis key that lets one worker of ledger ``ledger`` at a time do a maintenance round."""
    return f"mlpq:{ledger}:maintenance"


def task_ids_waiting(client: redis.Redis, ledger: str) -> set[str]:
    """Ids of the jobs waiting in ledger ``ledger``'s queues.

    Messages delivered but not acknowledged (kombu's ``unacked`` hash) do not
    count: their consumer claims a job as soon as it reserves its message, so a
    job still queued a lease after its message was reserved lost its consumer,
    and kombu would restore the message only after the 48 h visibility timeout.
    A malformed message counts for no job (a worker will dead-letter it).
    """
    ids = set()
    for key in client.scan_iter(match=f"{ledger_queue_prefix(ledger)}*"):
        if client.type(key) == b"list":
            for raw in client.lrange(key, 0, -1):
                with suppress(MalformedMessage):
                    ids.add(read_message(raw))
    return ids


class Maintenance:
    """The ledger check, the reaper and the reconciler of one worker on ledger ``ledger``."""

    def __init__(self, app: Celery, settings: Settings, node: str, ledger: str) -> None:
        self.app, self.node, self.leases, self.ledger = app, node, settings.leases, ledger
        self.ledger_file = sqlite_file(settings.database_url)
        self.engine = make_engine(settings.database_url, pooled=False, existing=True)  # nothing open across forks
        self.stopped: LedgerChanged | None = None
        """Why the worker stopped consuming, once it has."""
        self.connected_since: float | None = None
        """Since when (monotonic) every look at the database got through promptly; ``None`` while it fails."""
        self.outage = Outage(log, "maintenance")
        self.artifacts = ArtifactStore(self.engine, settings.artifact_dir, settings.artifact_limit)

    @property
    def slow_s(self) -> float:
        """A transaction that waits longer than this to start means the database was away (or locked)
        for long enough to delay heartbeats."""
        return self.leases.lease_s / 3

    def tick(self) -> None:
        """One round. Raises ``LedgerChanged``; other errors are logged as an outage (a line when rounds start
        failing, one a minute while they fail, one when they work again), never raised into the event loop."""
        began = time.monotonic()  # the ledger check waits too (SQLite's lock, a slow server): it counts
        try:
            try:
                self.check_ledger()
            except LedgerChanged:
                raise
            except Exception:
                self.connected_since = None  # the database is away: count a full lease again once it is back
                raise
            with self.engine.begin() as connection:  # on SQLite, BEGIN IMMEDIATE: it waits as a heartbeat would
                self.note_reached(connection, began)
            if self._take_lock():
                self.requeue_expired()
                self.remove_ended_checkpoints()
                self.republish_missing()
                self.withdraw_abandoned()
        except LedgerChanged:
            raise
        except Exception as exc:
            self.outage.failed(exc)
        else:
            self.outage.succeeded()

    def check_ledger(self) -> None:
        """Raise ``LedgerChanged`` unless the ledger is still this worker's, at the schema it knows."""
        if self.ledger_file is not None and not self.ledger_file.exists():  # connecting would create it
            raise LedgerChanged(f"the ledger file {self.ledger_file} was deleted", cold=True)
        with self.engine.connect() as connection:
            change = ledger_change(connection, self.ledger)
            if change is not None:
                raise LedgerChanged(change, cold=True)
            try:
                check_schema(connection)
            except SchemaError as exc:
                raise LedgerChanged(str(exc), cold=False) from exc

    def _take_lock(self) -> bool:
        with self.app.connection_for_write() as connection:
            client = connection.default_channel.client
            return bool(client.set(lock_key(self.ledger), self.node, nx=True,
                                   ex=max(1, int(self.leases.maintenance_s))))

    def note_reached(self, connection: Connection, began: float) -> bool:
        """Record that the database answered a transaction begun at ``began``; whether it has answered
        promptly for a full lease. A failure to answer resets the count."""
        try:
            read_db_now(connection)
        except Exception:
            self.connected_since = None
            raise
        now = time.monotonic()
        if self.connected_since is None or now - began > self.slow_s:
            self.connected_since = now
        return now - self.connected_since >= self.leases.lease_s

    def publish(self, jobs: list[JobRecord]) -> None:
        """Publish the jobs' messages as ``mlpq submit`` does, over the worker's own broker connection."""
        with self.app.connection_for_write() as connection:
            messages.publish(connection.default_channel.client, self.ledger, jobs, [],
                             grace_s=self.leases.hard_limit_grace_s)

    def requeue_expired(self) -> None:
        with self.engine.begin() as connection:
            if not self.note_reached(connection, time.monotonic()):
                log.debug("not reaping: the database has not been reachable for a full lease yet")
                return
            requeued = jobs.requeue_expired(connection, lease=timedelta(seconds=self.leases.lease_s),
                                            max_attempts=self.leases.max_attempts,
                                            grace=timedelta(seconds=self.leases.hard_limit_grace_s))
        if requeued:
            log.warning("lease expired, requeued: %s", ", ".join(job.id for job in requeued))
            self.publish(requeued)

    def remove_ended_checkpoints(self) -> None:
        """A job that ended without its worker (see ``jobs.ended_with_checkpoint``) loses its checkpoint."""
        with self.engine.connect() as connection:
            ended = jobs.ended_with_checkpoint(connection)
        for job_id in ended:
            self.artifacts.remove(job_id, role="checkpoint")
        if ended:
            log.info("checkpoints of ended jobs removed: %s", ", ".join(ended))

    def republish_missing(self) -> None:
        with self.engine.connect() as connection:
            stale = jobs.queued_for(connection, timedelta(seconds=self.leases.lease_s))
        if not stale:
            return
        with self.app.connection_for_read() as connection:
            present = task_ids_waiting(connection.default_channel.client, self.ledger)
        missing = [job for job in stale if job.id not in present]
        if missing:
            log.warning("queued but missing from the broker, re-published: %s", ", ".join(j.id for j in missing))
            self.publish(missing)
            with self.engine.begin() as connection:
                jobs.mark_queued_now(connection, [job.id for job in missing])


    def withdraw_abandoned(self) -> None:
        """Withdraw jobs whose submit has not released them for a lease: it died (see ``mlpq.api_cli.batches``)."""
        with self.engine.begin() as connection:
            withdrawn = jobs.withdraw_abandoned(connection, timedelta(seconds=self.leases.lease_s))
        if withdrawn:
            log.warning("withdrawn, their submit never released them: %s", ", ".join(withdrawn))


def install(app: Celery, maintenance: Maintenance, interval: float) -> None:
    """Run ``maintenance.tick`` every ``interval`` seconds in the worker's main process (its timer).

    When the ledger changed, the worker stops consuming: a warm shutdown (running
    jobs finish) for a new schema, a cold one for a deleted or replaced ledger
    (its jobs' results have nowhere to go). ``maintenance.stopped`` says why.
    """

    def round_or_stop() -> None:
        if maintenance.stopped is not None:  # shutting down: the timer still fires while the pool drains
            return
        try:
            maintenance.tick()
        except LedgerChanged as exc:
            log.critical("%s: this worker stops consuming", exc)
            maintenance.stopped = exc
            raise (WorkerTerminate if exc.cold else WorkerShutdown)(1) from None

    class MaintenanceStep(bootsteps.StartStopStep):
        requires = {"celery.worker.components:Timer"}

        def start(self, worker: Any) -> None:
            self.timer_entry = worker.timer.call_repeatedly(interval, round_or_stop)

        def stop(self, worker: Any) -> None:
            entry = getattr(self, "timer_entry", None)
            if entry is not None:
                entry.cancel()

    app.steps["worker"].add(MaintenanceStep)

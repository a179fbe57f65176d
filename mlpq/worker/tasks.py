"""The Celery task: thin. It hands the job id of a screened message to ``execute_job``."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from celery import Celery
from sqlalchemy import Engine

from mlpq import messages
from mlpq.db.engine import make_engine
from mlpq.devices import Device
from mlpq.messages import TASK_NAME
from mlpq.worker import logs
from mlpq.worker.execute import execute_job
from mlpq.worker.job_files import ArtifactSettings
from mlpq.worker.lease import LeaseKeeper
from mlpq.worker.recycle import ProcessHealth

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What every job in this worker shares. Database engines are made per process, after the fork."""

    database_url: str
    device: Device
    hostname: str
    data_dir: Path
    heartbeat_s: float
    db_retry_s: float
    release_wait_s: float
    """How long a job's submit may take to release it before it is withdrawn (a lease)."""
    gpu_index: int | None = None
    """The host's index of the worker's GPU (NVML's), for provenance."""
    artifacts: ArtifactSettings = field(default_factory=ArtifactSettings)
    """Where jobs' files go (``MLPQ_ARTIFACT_DIR``) and the largest kept (``MLPQ_ARTIFACT_MAX_BYTES``)."""
    allow_commands: bool = False
    """Whether it runs command jobs; one that does not refuses any that reaches it."""
    _per_process: dict[int, tuple[Engine, LeaseKeeper]] = field(default_factory=dict)
    _health: dict[int, ProcessHealth] = field(default_factory=dict)

    def resources(self) -> tuple[Engine, LeaseKeeper]:
        """This process's engine and lease keeper, made on first use after the fork."""
        pid = os.getpid()
        if pid not in self._per_process:
            engine = make_engine(self.database_url, existing=True)
            self._per_process[pid] = engine, LeaseKeeper(engine, self.heartbeat_s)
        return self._per_process[pid]

    def health(self) -> ProcessHealth:
        """This process's health, which says after each job whether it may run another."""
        return self._health.setdefault(os.getpid(), ProcessHealth())


def register(app: Celery, ctx: WorkerContext) -> None:
    """Add the ``run_job`` task to ``app``, bound to this worker's context."""

    @app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def run_job(job_id: str) -> None:
        # The worker's transport (mlpq.worker.screening) lets only well-formed messages with a job id through.
        engine, leases = ctx.resources()
        try:
            status = execute_job(engine, job_id, device=ctx.device, worker_host=ctx.hostname,
                                 data_dir=ctx.data_dir, leases=leases, db_retry_s=ctx.db_retry_s,
                                 health=ctx.health(), gpu_index=ctx.gpu_index,
                                 release_wait_s=ctx.release_wait_s, artifacts=ctx.artifacts,
                                 allow_commands=ctx.allow_commands)
        except Exception as exc:  # e.g. the ledger unreachable past the retry deadline; the reaper recovers
            # the job. Logged here, never handed to Celery: its result pipe may be closing (billiard can hang
            # on a large pickled exception during a cold shutdown).
            log.error("job %s: the worker could not record it: %s", job_id, logs.reason(exc),
                      exc_info=logs.traceback_of(exc))
            return
        if status is not None:
            signal_end(app, job_id, status.value)


def signal_end(app: Celery, job_id: str, status: str) -> None:
    """Tell waiting clients the job ended (best effort: they also poll the ledger)."""
    try:
        with app.connection_for_write() as connection:
            messages.signal_done(connection.default_channel.client, job_id, status)
    except Exception as exc:  # the outcome is in the ledger; a lost signal costs a waiter one poll interval
        log.warning("could not signal the end of job %s: %s", job_id, logs.reason(exc),
                    exc_info=logs.traceback_of(exc))

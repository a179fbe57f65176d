"""Start a Celery worker that consumes exactly one device's queues."""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

from celery.signals import celeryd_init, task_prerun, worker_process_init

from mlpq.config import Settings
from mlpq.db.ledger import open_ledger, require_identity
from mlpq.devices import Device, worker_queues
from mlpq.worker import celery_private, logs, recycle
from mlpq.worker.app import create_app
from mlpq.worker.device import check_pinned_gpu, pin_process
from mlpq.worker.maintenance import Maintenance, install
from mlpq.messages import check_tls
from mlpq.worker.screening import consume_screened
from mlpq.worker.status import Presence, host_gpu_index, install_presence
from mlpq.worker.job_files import ArtifactSettings
from mlpq.worker.tasks import WorkerContext, register
from mlpq.worker.threads import cpu_group, fixed_threads, usable_cpus

log = logging.getLogger(__name__)


def node_name(device: Device, hostname: str) -> str:
    """A Celery node name unique on this host, e.g. ``cuda0.1234@gpu-box`` or ``a100.cuda0.1234@gpu-box``."""
    pool = f"{device.pool}." if device.pool else ""
    return f"{pool}{str(device).replace(':', '')}.{os.getpid()}@{hostname}"


def start_worker(settings: Settings, device: Device, *, hostname: str | None = None, concurrency: int = 1,
                 gpu_index: int | None = None, loglevel: str = "INFO",
                 max_jobs_per_process: int | None = None, threads: int | None = None,
                 allow_commands: bool = False) -> int:
    """Pin the process, check the device and the ledger, then run the worker until it is stopped.

    Pool processes stay warm across jobs (a GPU process keeps its CUDA context);
    ``recycle`` replaces one when a job leaves it unhealthy, and
    ``max_jobs_per_process`` (if given) after that many jobs regardless.
    Each job gets ``threads`` torch threads if given, else ``OMP_NUM_THREADS`` if set, else 2 on a GPU,
    else an equal share of the machine's CPUs among the pool processes of every live CPU worker on it,
    decided as the job starts (``mlpq.worker.threads``). With ``allow_commands`` it also consumes the device's
    command queues and runs command jobs (``mlpq.kinds.command``).

    Blocks; returns Celery's exit code (non-zero when the worker stopped on an error). Raises
    ``DeviceError`` when the GPU does not exist, SQLAlchemy's errors when the database cannot be
    reached, ``SchemaError`` when it is not at this mlpq's schema and ``BrokerTLSError`` when the broker's
    TLS certificate cannot be verified, before anything is consumed;
    ``LedgerChanged`` when the worker stopped because its ledger was deleted, replaced or migrated.
    """
    pin_process(device, gpu_index)
    check_pinned_gpu(device)
    engine = open_ledger(settings.database_url)  # fail fast: reachable, at this code's schema
    with engine.connect() as connection:
        ledger = require_identity(connection)
    engine.dispose()  # keep no connection across fork
    check_tls(settings.broker_url)  # Celery would retry a certificate it cannot verify forever
    # Imported once here so pool processes start warm. Importing torch does not initialise CUDA.
    import torch

    hostname = hostname or socket.gethostname()
    context = WorkerContext(settings.database_url, device, hostname, settings.data_dir,
                            settings.leases.heartbeat_s, settings.leases.db_retry_s, settings.leases.lease_s,
                            host_gpu_index(device, gpu_index),
                            ArtifactSettings(settings.artifact_dir, settings.artifact_limit), allow_commands=allow_commands)
    node = node_name(device, hostname)
    cpus = usable_cpus()
    presence = Presence(settings.broker_url, ledger, node, hostname, device, concurrency, context.gpu_index,
                        len(cpus), cpu_group(cpus), fixed_threads(device.type, threads, len(cpus)),
                        commands=allow_commands)

    @worker_process_init.connect(weak=False)
    def _prepare_process(**_: object) -> None:
        torch.set_num_threads(presence.threads)
        recycle.install(context.health())

    logs.configure(loglevel)
    @task_prerun.connect(weak=False)
    def _threads_for_job(**_: object) -> None:
        wanted = presence.threads_for_job()
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)

    app = create_app(settings)
    consume_screened(app, ledger)
    celery_private.allow_ending_processes(app)  # billiard then asks recycle's check after each job
    app.conf.worker_enable_remote_control = False  # nothing is broadcast to workers: they tell the registry
    register(app, context)
    maintenance = Maintenance(app, settings, node, ledger)
    install(app, maintenance, settings.leases.maintenance_s)
    install_presence(app, presence)
    queues = worker_queues(device, ledger, commands=allow_commands)
    argv = ["worker", "--pool", "prefork", "--concurrency", str(concurrency),
            "--queues", ",".join(queues), "--hostname", node,
            "--loglevel", loglevel, "--without-gossip", "--without-mingle"]
    if max_jobs_per_process is not None:
        argv += ["--max-tasks-per-child", str(max_jobs_per_process)]
    log.info("starting worker for %s on %s as %s", device, ", ".join(queues), node)
    started: list[Any] = []
    celeryd_init.connect(lambda instance, **_: started.append(instance), weak=False)
    try:
        app.worker_main(argv)  # returns even when the worker stopped on an error
    finally:
        presence.leave()
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # Celery sent them to its log while it ran
    if maintenance.stopped is not None:
        raise maintenance.stopped
    return started[-1].exitcode or 0 if started else 1

"""Start a Celery worker that consumes exactly one device's queues."""

from __future__ import annotations

import logging
import os
import socket

from celery.signals import worker_process_init

from mlpq.config import Settings
from mlpq.db.migrate import upgrade_schema
from mlpq.db.session import make_engine
from mlpq.worker import recycle
from mlpq.worker.app import create_app
from mlpq.worker.device import Device, check_pinned_gpu, pin_process, worker_queues
from mlpq.worker.maintenance import Maintenance, install
from mlpq.worker.status import host_gpu_index, install_status_command
from mlpq.worker.tasks import WorkerContext, register

log = logging.getLogger(__name__)


def node_name(device: Device, hostname: str) -> str:
    """A Celery node name unique on this host, e.g. ``cuda0.1234@gpu-box`` or ``a100.cuda0.1234@gpu-box``."""
    pool = f"{device.pool}." if device.pool else ""
    return f"{pool}{str(device).replace(':', '')}.{os.getpid()}@{hostname}"


def start_worker(settings: Settings, device: Device, *, hostname: str | None = None, concurrency: int = 1,
                 gpu_index: int | None = None, loglevel: str = "INFO",
                 max_jobs_per_process: int | None = None) -> None:
    """Pin the process, check the device, migrate the ledger, then run the worker until it is stopped.

    Pool processes stay warm across jobs (a GPU process keeps its CUDA context);
    ``recycle`` replaces one when a job leaves it unhealthy, and
    ``max_jobs_per_process`` (if given) after that many jobs regardless.

    Blocks. Raises ``DeviceError`` when the GPU does not exist, SQLAlchemy's
    errors when the database cannot be reached and ``SchemaError`` when it
    cannot be migrated, before anything is consumed.
    """
    pin_process(device, gpu_index)
    check_pinned_gpu(device)
    engine = make_engine(settings.database_url)
    upgrade_schema(engine)  # fail fast, migrate the ledger to this code's schema
    engine.dispose()  # keep no connection across fork
    # Imported once here so pool processes start warm. Importing torch does not initialise CUDA.
    import torch

    threads_per_process = max(1, (os.cpu_count() or 1) // concurrency)
    hostname = hostname or socket.gethostname()
    context = WorkerContext(settings.database_url, device, hostname, settings.data_dir,
                            settings.leases.heartbeat_s, host_gpu_index(device, gpu_index))

    @worker_process_init.connect(weak=False)
    def _prepare_process(**_: object) -> None:
        torch.set_num_threads(threads_per_process)
        recycle.install(context.health())

    app = create_app(settings)
    app.conf.worker_max_memory_per_child = recycle.LIMIT_KB  # billiard then asks recycle's probe after each job
    register(app, context)
    node = node_name(device, hostname)
    install(app, Maintenance(app, settings, node), settings.leases.maintenance_s)
    install_status_command(device, context.gpu_index)
    argv = ["worker", "--pool", "prefork", "--concurrency", str(concurrency),
            "--queues", ",".join(worker_queues(device)), "--hostname", node,
            "--loglevel", loglevel, "--without-gossip", "--without-mingle"]
    if max_jobs_per_process is not None:
        argv += ["--max-tasks-per-child", str(max_jobs_per_process)]
    log.info("starting worker for %s on %s as %s", device, ", ".join(worker_queues(device)), node)
    app.worker_main(argv)

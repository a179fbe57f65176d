"""What a worker tells ``mlpq workers``: its device, ledger and queues, the jobs it runs, its GPU's name and memory.

The GPU is read through NVML (``mlpq.worker.nvml``), which does not initialise
CUDA, so the worker's parent process can ask it without harming its forked pool.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import Celery
from celery.signals import worker_shutdown, worker_shutting_down
from celery.worker import state as worker_state
from celery.worker.control import inspect_command

from mlpq.devices import Device, worker_queues
from mlpq.worker.nvml import gpu_info

log = logging.getLogger(__name__)

STATUS_COMMAND = "mlpq_status"
STOPPING_PREFIX = "mlpq:stopping:"
"""A worker in warm shutdown no longer answers broadcasts: it leaves its last status under this prefix + its node
name until it exits (``mlpq workers`` shows it as stopping while its jobs still run)."""
STOPPING_TTL_S = 25 * 3600
"""Longer than any job may run; ``mlpq workers`` also drops an entry once none of its jobs is running."""


def host_gpu_index(device: Device, gpu_index: int | None) -> int | None:
    """The index the host (and NVML) gives a worker's GPU, as in ``pin_process``; ``None`` for cpu."""
    if device.type == "cpu":
        return None
    return gpu_index if gpu_index is not None else (device.index or 0)


def worker_status(device: Device, ledger: str, host_gpu_index: int | None) -> dict[str, Any]:
    """This worker's answer to ``mlpq workers``."""
    return {
        "device": str(device),
        "ledger": ledger,
        "pool": device.pool,
        "queues": worker_queues(device, ledger),
        "active_jobs": sorted(request.id for request in worker_state.active_requests),
        "gpu": gpu_info(host_gpu_index) if host_gpu_index is not None else None,
    }


def install_status_command(device: Device, ledger: str, host_gpu_index: int | None) -> None:
    """Make this process's worker answer the ``mlpq_status`` broadcast."""

    @inspect_command(name=STATUS_COMMAND)
    def mlpq_status(state: Any) -> dict[str, Any]:
        return worker_status(device, ledger, host_gpu_index)


def install_stopping_notice(app: Celery, node: str, device: Device, ledger: str, host_gpu_index: int | None) -> None:
    """When warm shutdown begins with jobs still running, say so in Redis; remove it when the worker exits."""
    key = STOPPING_PREFIX + node

    @worker_shutting_down.connect(weak=False)
    def _announce(**_: object) -> None:
        status = worker_status(device, ledger, host_gpu_index)
        if status["active_jobs"]:
            _write(app, lambda client: client.set(key, json.dumps(status), ex=STOPPING_TTL_S))

    @worker_shutdown.connect(weak=False)
    def _gone(**_: object) -> None:
        _write(app, lambda client: client.delete(key))


def _write(app: Celery, action: Any) -> None:
    try:
        with app.connection_for_write() as connection:
            action(connection.default_channel.client)
    except Exception as exc:  # shutting down anyway: the entry expires, and workers drops it once its jobs end
        log.warning("could not update the stopping notice: %s", exc)

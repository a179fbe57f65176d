"""What a worker tells ``mlpq workers``: its device and queues, the jobs it runs, its GPU's name and memory.

The GPU is read through NVML (``mlpq.worker.nvml``), which does not initialise
CUDA, so the worker's parent process can ask it without harming its forked pool.
"""

from __future__ import annotations

from typing import Any

from celery.worker import state as worker_state
from celery.worker.control import inspect_command

from mlpq.worker.device import Device, worker_queues
from mlpq.worker.nvml import gpu_info

STATUS_COMMAND = "mlpq_status"


def host_gpu_index(device: Device, gpu_index: int | None) -> int | None:
    """The index the host (and NVML) gives a worker's GPU, as in ``pin_process``; ``None`` for cpu."""
    if device.type == "cpu":
        return None
    return gpu_index if gpu_index is not None else (device.index or 0)


def worker_status(device: Device, host_gpu_index: int | None) -> dict[str, Any]:
    """This worker's answer to ``mlpq workers``."""
    return {
        "device": str(device),
        "pool": device.pool,
        "queues": worker_queues(device),
        "active_jobs": sorted(request.id for request in worker_state.active_requests),
        "gpu": gpu_info(host_gpu_index) if host_gpu_index is not None else None,
    }


def install_status_command(device: Device, host_gpu_index: int | None) -> None:
    """Make this process's worker answer the ``mlpq_status`` broadcast."""

    @inspect_command(name=STATUS_COMMAND)
    def mlpq_status(state: Any) -> dict[str, Any]:
        return worker_status(device, host_gpu_index)

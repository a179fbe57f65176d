"""What a worker tells ``mlpq workers``: its device, ledger and queues, the jobs it runs, its GPU's name and memory.

The GPU is read through NVML (nvidia-ml-py), which does not initialise CUDA, so
the worker's parent process can ask it without harming its forked pool.
"""

from __future__ import annotations

from typing import Any

from celery.worker import state as worker_state
from celery.worker.control import inspect_command

from mlpq.worker.device import Device, worker_queues

STATUS_COMMAND = "mlpq_status"
MIB = 1024 * 1024


def gpu_info(host_index: int) -> dict[str, Any] | None:
    """Name and memory of GPU ``host_index`` as the host numbers it; ``None`` without NVML or that GPU."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(host_index)
        name = pynvml.nvmlDeviceGetName(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    except pynvml.NVMLError:
        return None
    finally:
        pynvml.nvmlShutdown()
    return {"name": name.decode() if isinstance(name, bytes) else name,
            "memory_used_mib": memory.used // MIB, "memory_total_mib": memory.total // MIB}


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

"""What produced a result: versions, where the job computed, host and the git commit of a source checkout.

Nothing here initialises CUDA: the GPU is named through NVML, so a job that
computed on the CPU inside a GPU worker (Himmelblau's scalar engine) leaves the
process without a CUDA context.
"""

from __future__ import annotations

import platform
import socket
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import mlpq
from mlpq.devices import Device
from mlpq.worker.nvml import gpu_info


@cache
def git_commit() -> str | None:
    """The commit of the checkout mlpq runs from, if it runs from one (asked once per process)."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(mlpq.__file__).parent, capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def computed_on(worker_device: Device, reported: str | None) -> str:
    """Where the job computed, as a user reads it: ``cuda:1``, or ``cpu (scalar engine) on a cuda:1 worker``."""
    if reported is None or (reported.startswith("cuda") and worker_device.type == "cuda"):
        return str(worker_device)
    return reported if worker_device.type == "cpu" else f"{reported} on a {worker_device} worker"


def describe(worker_device: Device, reported: str | None, gpu_index: int | None) -> dict[str, Any]:
    """Versions, the worker's device, where the job computed and, on a GPU, which one (index, name, UUID)."""
    import torch

    on_gpu = worker_device.type == "cuda" and (reported is None or reported.startswith("cuda"))
    gpu = gpu_info(gpu_index) if on_gpu and gpu_index is not None else None
    return {
        "mlpq": mlpq.__version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "worker_device": str(worker_device),
        "computed_on": computed_on(worker_device, reported),
        "device_name": gpu["name"] if gpu else (None if on_gpu else platform.processor() or "cpu"),
        "gpu": {key: gpu[key] for key in ("index", "name", "uuid")} if gpu else None,
        "git_commit": git_commit(),
    }

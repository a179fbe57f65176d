"""What produced a result: versions, device, host and the git commit of a source checkout."""

from __future__ import annotations

import platform
import socket
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import mlpq


@cache
def git_commit() -> str | None:
    """The commit of the checkout mlpq runs from, if it runs from one (asked once per process)."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(mlpq.__file__).parent, capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def describe(torch_device: str) -> dict[str, Any]:
    """Versions and the device a job ran on (imports torch)."""
    import torch

    on_gpu = torch_device.startswith("cuda")
    return {
        "mlpq": mlpq.__version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "device_name": torch.cuda.get_device_name(torch_device) if on_gpu else platform.processor() or "cpu",
        "git_commit": git_commit(),
    }

"""Device names, pools, their queues, and pinning a process to one GPU before torch is imported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

from mlpq.errors import InvalidError
from mlpq.redact import shown

DEVICE_PATTERN = re.compile(r"(cpu|cuda)(?::([0-9]{1,2}))?")
POOL_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
QUEUE_PREFIX = "mlpq."


class DeviceError(InvalidError, ValueError):
    """A device string or pool name is malformed, or the device does not exist on this host."""


@dataclass(frozen=True)
class Device:
    """``cpu``, ``cuda`` (any GPU) or ``cuda:N``, optionally in a named pool of hosts."""

    type: str
    index: int | None = None
    pool: str | None = None
    """A group of hosts (one machine or several identical ones); ``None``: any host outside a pool."""

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def queue(self, ledger: str) -> str:
        """The Celery queue that ledger ``ledger``'s jobs for this device (in its pool) are sent to:
        ``mlpq.<ledger>.cuda:0`` or ``mlpq.<ledger>.<pool>.cuda:0``. The one place queue names are made,
        so a worker only sees its own ledger's and pool's jobs."""
        pool = f"{self.pool}." if self.pool else ""
        return f"{ledger_queue_prefix(ledger)}{pool}{self}"


def ledger_queue_prefix(ledger: str) -> str:
    """What the names of ledger ``ledger``'s queues start with, e.g. ``mlpq.3f2a9c1b04d7.``."""
    return f"{QUEUE_PREFIX}{ledger}."


def parse_pool(text: str) -> str:
    """A pool name: 1 to 32 lower-case letters, digits, ``-`` or ``_``; raises ``DeviceError``."""
    if POOL_PATTERN.fullmatch(text) is None:
        raise DeviceError(f"invalid pool {shown(text)}: use 1 to 32 lower-case letters, digits, '-' or '_'")
    return text


def parse_device(text: str, pool: str | None = None) -> Device:
    """Parse ``cpu``, ``cuda`` or ``cuda:N`` (in ``pool``, if given); raises ``DeviceError``."""
    match = DEVICE_PATTERN.fullmatch(text.strip().lower())
    if match is None or (match[1] == "cpu" and match[2] is not None):
        raise DeviceError(f"invalid device {shown(text)}: use cpu, cuda or cuda:N")
    return Device(match[1], int(match[2]) if match[2] is not None else None, parse_pool(pool) if pool else None)


def worker_queues(device: Device, ledger: str) -> list[str]:
    """The queues a worker for ``device`` on ledger ``ledger`` consumes; a ``cuda:N`` worker also takes
    jobs sent to any GPU (``cuda``) of its pool."""
    if device.type == "cuda":
        return [device.queue(ledger), Device("cuda", pool=device.pool).queue(ledger)]
    return [device.queue(ledger)]


def pin_process(device: Device, gpu_index: int | None = None) -> None:
    """Make this process (and its forks) see only ``device``'s GPU, or none for ``cpu``.

    ``CUDA_VISIBLE_DEVICES`` is read when CUDA initialises, so it must be set
    before torch is imported. ``gpu_index`` is the GPU's index as this host sees
    it (inside a container that reserved one GPU it is 0); it defaults to N.
    """
    if "torch" in sys.modules:
        raise RuntimeError("pin_process must run before torch is imported")
    index = None if device.type == "cpu" else (gpu_index if gpu_index is not None else (device.index or 0))
    os.environ.update(visible_devices_env(index))


def visible_devices_env(host_index: int | None) -> dict[str, str]:
    """The environment that shows a process GPU ``host_index`` alone (none for ``None``), numbered as
    ``nvidia-smi``, NVML and Docker number GPUs (by PCI bus id, not CUDA's fastest-first default).

    ``torch.cuda.is_available()`` then asks NVML rather than creating a CUDA context.
    """
    return {"CUDA_VISIBLE_DEVICES": "" if host_index is None else str(host_index),
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID", "PYTORCH_NVML_BASED_CUDA_CHECK": "1"}


def visible_gpu_count() -> int:
    """GPUs torch can see under the current environment, asked in a child process.

    Asking here would initialise CUDA in a process that later forks its pool,
    and CUDA does not survive a fork.
    """
    probe = "import torch; print(torch.cuda.device_count())"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    try:
        return int(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return 0


def check_pinned_gpu(device: Device) -> None:
    """Raise ``DeviceError`` unless the GPU this process is pinned to exists."""
    if device.type == "cuda" and visible_gpu_count() < 1:
        raise DeviceError(
            f"no GPU for {device} on this host (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', '')!r}, torch sees none)"
        )


def torch_device_name(device: Device) -> str:
    """The torch device a job uses inside a pinned worker: the pinned GPU is always ``cuda:0``."""
    return "cpu" if device.type == "cpu" else "cuda:0"

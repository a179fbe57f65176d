"""Pinning a process to one GPU before torch is imported, and probing the GPUs it sees (names: ``mlpq.devices``)."""

from __future__ import annotations

import os
import subprocess
import sys

from mlpq.devices import Device, DeviceError


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

"""A GPU's identity and memory from NVML (nvidia-ml-py), which never initialises CUDA.

NVML numbers GPUs by PCI bus id, as ``nvidia-smi`` and Docker's ``device_ids``
do; workers set ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so CUDA numbers them the same way.
"""

from __future__ import annotations

from typing import Any

MIB = 1024 * 1024


def gpu_info(host_index: int) -> dict[str, Any] | None:
    """Index, name, UUID and memory of GPU ``host_index`` as the host numbers it; ``None`` without NVML or that GPU."""
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
        uuid = pynvml.nvmlDeviceGetUUID(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    except pynvml.NVMLError:
        return None
    finally:
        pynvml.nvmlShutdown()
    return {"index": host_index, "name": text(name), "uuid": text(uuid),
            "memory_used_mib": memory.used // MIB, "memory_total_mib": memory.total // MIB}


def text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value

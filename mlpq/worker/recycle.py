"""When a warm worker process is replaced: after a CUDA failure, or when its GPU memory is not back near baseline.

A pool process keeps its CUDA context across jobs, so only the first job pays
for CUDA's and cuBLAS's start-up. After each job the process collects garbage,
empties torch's caching allocator and reads how much device memory it still
reserves; that may exceed what it deliberately keeps (the dataset resident on the
device, see ``mlpq.models.resident``) by ``HELD_SLACK_BYTES`` (cuBLAS workspaces
and the like). More than that, an out-of-memory error in any form, or any other
CUDA error (which poisons the context), and the process exits after reporting
the job; Celery starts a fresh one for the next job.

The exit goes through billiard's own recycling path, once the job's result has
been handed to the parent; ``install`` points billiard's question after each job
at ``ProcessHealth.check`` (through ``celery_private``, the one module that
reaches past Celery's public API).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from mlpq.redact import one_line
from mlpq.worker import celery_private, cuda_errors

log = logging.getLogger(__name__)

MIB = 1024 * 1024
HELD_SLACK_BYTES = 256 * MIB
"""Device memory a process may hold after a job beyond its resident dataset before it is replaced."""


def recycle_reason(failure: cuda_errors.CudaFailure | None, held_bytes: int | None, kept_bytes: int,
                   slack_bytes: int = HELD_SLACK_BYTES) -> str | None:
    """Why the process must be replaced, or ``None`` to keep it.

    ``held_bytes`` is the device memory reserved after the allocator was emptied
    (``None`` when the process never touched CUDA); ``kept_bytes`` what it keeps
    on purpose.
    """
    if failure is not None:
        return f"the last job ended with {failure}"
    if held_bytes is not None and held_bytes > kept_bytes + slack_bytes:
        return (f"it still holds {held_bytes / MIB:,.0f} MiB of GPU memory after the job, more than the "
                f"{kept_bytes / MIB:,.0f} MiB it keeps plus {slack_bytes / MIB:,.0f} MiB")
    return None


def gpu_memory_held() -> int | None:
    """Device memory this process reserves once garbage and torch's cache are freed; ``None`` without a CUDA context.

    Raises whatever CUDA raises when the context is broken.
    """
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return None  # never ask CUDA here: that would create a context in a process that computed on the CPU
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    return int(torch.cuda.memory_reserved())


def resident_bytes() -> int:
    """Device memory the models keep between jobs on purpose."""
    from mlpq.models import resident

    return resident.device_bytes()


@dataclass
class ProcessHealth:
    """One pool process's state between jobs: the last CUDA failure, and how to read its device memory."""

    held: Callable[[], int | None] = gpu_memory_held
    kept: Callable[[], int] = resident_bytes
    failure: cuda_errors.CudaFailure | None = field(default=None)

    def note(self, exc: BaseException) -> None:
        """Remember a job's exception if it is a CUDA failure."""
        self.failure = cuda_errors.classify(exc) or self.failure

    def check(self) -> str | None:
        """After a job: the reason to replace this process, or ``None``."""
        try:
            held = self.held()
        except Exception as exc:  # a poisoned context fails even to synchronise
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return f"its CUDA context no longer works ({one_line(detail, cuda_errors.MAX_MESSAGE)})"
        return recycle_reason(self.failure, held, self.kept() if held is not None else 0)


def install(health: ProcessHealth) -> None:
    """In a pool process: end it after each job for which ``health.check()`` gives a reason (logged)."""

    def unhealthy() -> bool:
        reason = health.check()
        if reason is not None:
            log.warning("replacing worker process %d: %s", os.getpid(), reason)
        return reason is not None

    celery_private.end_after_job_when(unhealthy)

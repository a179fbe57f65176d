"""The warm-process rule: a pool process is replaced after a CUDA failure or when its GPU memory is not freed."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch

from mlpq.models import resident
from mlpq.worker import celery_private, recycle
from mlpq.worker.cuda_errors import classify
from mlpq.worker.recycle import MIB, ProcessHealth, recycle_reason

OOM = classify(RuntimeError("CUDA error: out of memory"))


def test_a_healthy_process_is_kept() -> None:
    assert recycle_reason(None, None, 0) is None  # never touched CUDA (a CPU worker, or the scalar engine)
    assert recycle_reason(None, 0, 0) is None
    assert recycle_reason(None, 400 * MIB, 188 * MIB) is None  # the resident dataset plus workspaces


def test_memory_left_behind_replaces_the_process() -> None:
    reason = recycle_reason(None, 2048 * MIB, 188 * MIB)
    assert reason == ("it still holds 2,048 MiB of GPU memory after the job, more than the 188 MiB it keeps "
                      "plus 256 MiB")


def test_a_cuda_failure_replaces_the_process_whatever_its_memory() -> None:
    assert recycle_reason(OOM, 0, 0) == ("the last job ended with CUDA out of memory: the CUDA runtime could not "
                                         "allocate device memory")


def test_health_notes_only_cuda_failures() -> None:
    health = ProcessHealth(held=lambda: 10 * MIB, kept=lambda: 0)
    health.note(ValueError("bad input"))
    assert health.check() is None
    health.note(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB."))
    assert health.check() == "the last job ended with CUDA out of memory: Tried to allocate 1.00 GiB."


def test_a_context_that_cannot_synchronise_replaces_the_process() -> None:
    def broken() -> int:
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore")

    assert ProcessHealth(held=broken, kept=lambda: 0).check() == (
        "its CUDA context no longer works (CUDA error: an illegal memory access was encountered)")


def test_kept_memory_is_asked_only_of_a_process_with_a_cuda_context() -> None:
    def never() -> int:
        raise AssertionError("asked for kept memory without a CUDA context")

    assert ProcessHealth(held=lambda: None, kept=never).check() is None


def test_without_cuda_no_context_is_created() -> None:
    assert not torch.cuda.is_initialized()
    assert recycle.gpu_memory_held() is None
    assert not torch.cuda.is_initialized()


def test_resident_cpu_data_is_not_counted_as_gpu_memory() -> None:
    resident.clear()
    value, was_kept = resident.get("k", lambda: torch.zeros(1000))
    assert not was_kept and resident.get("k", lambda: torch.ones(1))[1]
    assert resident.device_bytes() == 0
    resident.clear()


def test_the_health_check_decides_whether_billiard_ends_the_process(monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    asked: list[Callable[[], bool]] = []
    monkeypatch.setattr(celery_private, "end_after_job_when", asked.append)
    health = ProcessHealth(held=lambda: None, kept=lambda: 0)
    recycle.install(health)
    [should_end] = asked
    assert not should_end()
    health.note(RuntimeError("CUDA error: out of memory"))
    assert should_end()
    assert f"replacing worker process {os.getpid()}: the last job ended with CUDA out of memory" in caplog.text

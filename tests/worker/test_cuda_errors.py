"""CUDA's failures in each form torch raises them, each said in one clean line."""

from __future__ import annotations

import pytest
import torch

from mlpq.worker.cuda_errors import classify
from mlpq.worker.execute import describe_failure

ALLOCATOR = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 139.81 GiB of which "
             "1.19 GiB is free. Including non-PyTorch memory, this process has 138.61 GiB memory in use. Of the "
             "allocated memory 136.00 GiB is allocated by PyTorch. If reserved but unallocated memory is large try "
             "setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation "
             "for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)")
RUNTIME = ("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported at some other API call, "
           "so the stacktrace below might be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1\n"
           "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.\n")
CUBLAS = "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"


@pytest.mark.parametrize(("exc", "line"), [
    (torch.cuda.OutOfMemoryError(ALLOCATOR),
     "CUDA out of memory: Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 139.81 GiB of which 1.19 GiB "
     "is free."),
    (RuntimeError(RUNTIME), "CUDA out of memory: the CUDA runtime could not allocate device memory"),
    (torch.AcceleratorError(RUNTIME), "CUDA out of memory: the CUDA runtime could not allocate device memory"),
    (RuntimeError(CUBLAS), "CUDA out of memory: a CUDA library could not allocate its workspace "
                           "(CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`)"),
    (RuntimeError("CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be ..."),
     "CUDA error: an illegal memory access was encountered"),
])
def test_every_form_ends_as_one_clean_line(exc: BaseException, line: str) -> None:
    assert describe_failure(exc, 60) == line
    assert classify(exc) is not None and classify(exc).out_of_memory == line.startswith("CUDA out of memory")


def test_an_out_of_memory_error_raised_from_another_is_found() -> None:
    try:
        try:
            raise RuntimeError(RUNTIME)
        except RuntimeError as inner:
            raise ValueError("the step failed") from inner
    except ValueError as outer:
        assert describe_failure(outer, 60) == "CUDA out of memory: the CUDA runtime could not allocate device memory"


@pytest.mark.parametrize("exc", [RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"),
                                 RuntimeError("mat1 and mat2 shapes cannot be multiplied"),
                                 ValueError("CUDA error: out of memory")])
def test_other_errors_are_not_cuda_failures(exc: BaseException) -> None:
    assert classify(exc) is None
    assert describe_failure(exc, 60) == f"{type(exc).__name__}: {exc}"


def test_an_allocator_error_without_detail() -> None:
    assert describe_failure(torch.cuda.OutOfMemoryError(""), 60) == "CUDA out of memory: no detail"

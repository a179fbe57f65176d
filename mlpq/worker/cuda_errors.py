"""Recognise CUDA's failures in every form torch raises them, and say each in one clean line (no torch import).

Out of memory reaches a job as ``torch.cuda.OutOfMemoryError`` from the caching
allocator ("CUDA out of memory. Tried to allocate …"), or as a plain
``RuntimeError`` (or ``torch.AcceleratorError``) from the runtime or a library
("CUDA error: out of memory", "CUBLAS_STATUS_ALLOC_FAILED when calling
`cublasCreate(handle)`"). Any other "CUDA error: …" is sticky: the process's CUDA
context cannot be trusted afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlpq.redact import one_line

OOM_PREFIX = "CUDA out of memory"
ALLOCATOR_OOM = re.compile(r"^\s*CUDA out of memory\.?\s*", re.IGNORECASE)
RUNTIME_OOM = re.compile(r"CUDA error: out of memory", re.IGNORECASE)
LIBRARY_OOM = re.compile(r"\b(CUBLAS|CUSOLVER|CUSPARSE|CUFFT|CUDNN)_STATUS_ALLOC_FAILED\b[^\n]*")
CUDA_ERROR = re.compile(r"CUDA error: ([^\n]+)")
ALLOCATOR_ADVICE = re.compile(r"\s*(Including non-PyTorch memory|Of the allocated memory|If reserved but "
                              r"unallocated|See documentation for Memory Management)")
MAX_MESSAGE = 300
"""The most of CUDA's own words a failure's line quotes."""


@dataclass(frozen=True)
class CudaFailure:
    """A CUDA failure: ``out_of_memory`` or another (context-poisoning) error, and its one-line description."""

    out_of_memory: bool
    message: str

    def __str__(self) -> str:
        return f"{OOM_PREFIX}: {self.message}" if self.out_of_memory else f"CUDA error: {self.message}"


def classify(exc: BaseException) -> CudaFailure | None:
    """The CUDA failure ``exc`` (or an exception it was raised from) reports, or ``None`` if it is none."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        failure = classify_one(current)
        if failure is not None:
            return failure
        current = current.__cause__ or current.__context__
    return None


def classify_one(exc: BaseException) -> CudaFailure | None:
    text = str(exc)
    if type(exc).__name__ == "OutOfMemoryError" or ALLOCATOR_OOM.match(text):
        return CudaFailure(True, allocator_message(text))
    if not isinstance(exc, RuntimeError):
        return None
    if RUNTIME_OOM.search(text):
        return CudaFailure(True, "the CUDA runtime could not allocate device memory")
    library = LIBRARY_OOM.search(text)
    if library:
        return CudaFailure(True, "a CUDA library could not allocate its workspace "
                                 f"({one_line(library.group(0), MAX_MESSAGE)})")
    error = CUDA_ERROR.search(text)
    if error:
        return CudaFailure(False, one_line(error.group(1), MAX_MESSAGE))
    return None


def allocator_message(text: str) -> str:
    """The allocator's own sentence without its repeated prefix and its advice: 'Tried to allocate 2.00 GiB. …'."""
    first = ALLOCATOR_OOM.sub("", text.strip().splitlines()[0] if text.strip() else "", count=1)
    first = ALLOCATOR_ADVICE.split(first, maxsplit=1)[0].strip()
    return one_line(first, MAX_MESSAGE) or "no detail"

"""How many torch threads each pool process gets."""

from __future__ import annotations

import os

import pytest

from mlpq.worker.launch import torch_threads

CPUS = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(("omp_num_threads", "concurrency", "expected"), [
    ("3", 1, 3),  # the user's choice wins
    ("3", 2, 3),
    (None, 1, CPUS),  # otherwise the CPUs this process may use, shared among the pool
    (None, CPUS * 2, 1),
    ("0", 1, CPUS),  # not a thread count: ignored
    ("two", 1, CPUS),
    ("²", 1, CPUS),  # digits other than 0-9 are not a count either
    ("٣", 1, CPUS),
])
def test_threads_per_pool_process(omp_num_threads: str | None, concurrency: int, expected: int,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if omp_num_threads is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp_num_threads)
    assert torch_threads(concurrency) == expected

"""How many torch threads a pool process takes: the user's number, or its share of the machine's CPUs."""

from __future__ import annotations

import pytest

from mlpq.worker import threads
from mlpq.worker.threads import CpuUse, cpu_group, fixed_threads, share


@pytest.mark.parametrize(("cpus", "uses", "expected"), [
    (8, [CpuUse(1)], 8),  # alone: every CPU
    (8, [CpuUse(2)], 4),  # one worker of concurrency 2
    (8, [CpuUse(1), CpuUse(1)], 4),  # two workers of concurrency 1 share as one of concurrency 2 does
    (8, [CpuUse(2), CpuUse(1)], 2),  # three processes: 8 // 3
    (2, [CpuUse(1), CpuUse(1)], 1),  # issue 17's two workers on two CPUs: one thread each, not two
    (8, [CpuUse(1), CpuUse(1, threads=2)], 6),  # a fixed worker's threads are taken first
    (8, [CpuUse(1), CpuUse(4, threads=2)], 1),  # nothing left: still one thread
    (2, [CpuUse(64)], 1),
])
def test_a_share_splits_what_the_fixed_workers_leave_among_the_sharing_processes(
        cpus: int, uses: list[CpuUse], expected: int) -> None:
    assert share(cpus, uses) == expected


@pytest.mark.parametrize(("device_type", "given", "omp", "cpus", "expected"), [
    ("cpu", None, None, 8, None),  # a share
    ("cpu", 3, "5", 8, 3),  # --threads wins
    ("cpu", None, "5", 8, 5),  # then OMP_NUM_THREADS
    ("cpu", None, "0", 8, None),  # not a thread count: ignored
    ("cpu", None, "two", 8, None),
    ("cpu", None, "٣", 8, None),  # Arabic-Indic three: ASCII digits only
    ("cuda", None, None, 8, threads.GPU_THREADS),  # a GPU worker needs few CPU threads
    ("cuda", None, None, 1, 1),
    ("cuda", 6, None, 8, 6),
])
def test_threads_are_fixed_by_the_option_the_environment_or_the_gpu(
        device_type: str, given: int | None, omp: str | None, cpus: int, expected: int | None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    assert fixed_threads(device_type, given, cpus) == expected


def test_workers_share_only_with_those_that_may_use_the_same_cpus() -> None:
    assert cpu_group(frozenset({0, 1})) == cpu_group(frozenset({1, 0}))
    assert cpu_group(frozenset({0, 1})) != cpu_group(frozenset({0}))

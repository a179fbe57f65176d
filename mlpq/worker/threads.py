"""How many torch threads a pool process takes: the user's number, or a fair share of its machine's CPUs.

The workers of one machine that may run on the same CPUs form a CPU group (``cpu_group``); each tells the
registry of live workers (``mlpq.worker.registry``) what it takes of those CPUs, as a ``CpuUse``. A worker
with a fixed thread count (``--threads``, ``OMP_NUM_THREADS``, or a GPU worker's ``GPU_THREADS``) takes
exactly that per process; the others split what is left evenly among their pool processes (``share``), so a
second worker that joins makes the jobs started after it on both use fewer threads.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterable, Set
from dataclasses import dataclass
from pathlib import Path

GPU_THREADS = 2
"""Threads per pool process of a GPU worker unless told otherwise: its jobs compute on the GPU."""
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
"""The running kernel's id: the same in every container of one machine, different on every other machine."""


@dataclass(frozen=True)
class CpuUse:
    """What one live worker takes of its CPU group: ``processes`` pool processes of ``threads`` threads each,
    or, with ``threads`` ``None``, an equal share of what the fixed ones leave."""

    processes: int
    threads: int | None = None


def share(cpus: int, uses: Iterable[CpuUse]) -> int:
    """Threads for each pool process that takes a share of ``cpus`` CPUs used by ``uses`` (all the group's live
    workers, the asking one included): the CPUs the fixed ones leave, split evenly, at least 1."""
    uses = list(uses)
    fixed = sum(use.processes * use.threads for use in uses if use.threads is not None)
    sharing = sum(use.processes for use in uses if use.threads is None)
    return max(1, (cpus - fixed) // max(1, sharing))


def fixed_threads(device_type: str, given: int | None, cpus: int) -> int | None:
    """Threads per process fixed by ``--threads`` (``given``), else by ``OMP_NUM_THREADS`` when it is a positive
    whole number, else ``GPU_THREADS`` (at most ``cpus``) for a GPU worker; ``None``: a CPU worker's share."""
    if given is not None:
        return given
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isascii() and omp.isdigit() and int(omp) > 0:
        return int(omp)
    return min(GPU_THREADS, cpus) if device_type != "cpu" else None


def usable_cpus() -> Set[int]:
    """The CPUs this process may run on."""
    return frozenset(os.sched_getaffinity(0))


def cpu_group(cpus: Set[int]) -> str:
    """A name shared by the workers of this machine that may use exactly the CPUs ``cpus``."""
    try:
        machine = BOOT_ID.read_text().strip()
    except OSError:  # not Linux: the host name stands for the machine
        machine = socket.gethostname()
    return hashlib.sha256(f"{machine}/{sorted(cpus)}".encode()).hexdigest()[:16]

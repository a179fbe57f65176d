"""A worker in the registry of live workers (``mlpq.worker.registry``): its record, kept fresh by its main
process, and the torch threads each job gets from the CPUs it shares with the machine's other workers.

The GPU is read through NVML (``mlpq.worker.nvml``), which does not initialise
CUDA, so the worker's parent process can ask it without harming its forked pool.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery, bootsteps
from celery.signals import worker_shutting_down
from celery.worker import state as worker_state

from mlpq import messages
from mlpq.devices import Device, worker_queues
from mlpq.worker import registry
from mlpq.worker.nvml import gpu_info
from mlpq.worker.threads import CpuUse, share

log = logging.getLogger(__name__)


def host_gpu_index(device: Device, gpu_index: int | None) -> int | None:
    """The index the host (and NVML) gives a worker's GPU, as in ``pin_process``; ``None`` for cpu."""
    if device.type == "cpu":
        return None
    return gpu_index if gpu_index is not None else (device.index or 0)


@dataclass
class Presence:
    """This worker's entries in the registry, and the threads its pool processes take.

    ``fixed`` is the threads per process the user (or the device) fixed, ``None`` for a share of the ``cpus``
    CPUs of CPU group ``group``. ``threads`` is what the last look at the group gave; pool processes inherit it
    and use it when the registry cannot be read.
    """

    broker_url: str
    ledger: str
    name: str
    host: str
    device: Device
    concurrency: int
    gpu_index: int | None
    cpus: int
    group: str
    fixed: int | None
    commands: bool = False
    """Whether it runs command jobs (``--allow-commands``)."""
    state: str = "running"
    threads: int = 0
    failing: bool = False
    """Whether the last refresh failed (its failure is logged once, not every round)."""
    _clients: dict[int, redis.Redis] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.threads = self.fixed if self.fixed is not None else share(self.cpus, [self.use])

    @property
    def use(self) -> CpuUse:
        return CpuUse(self.concurrency, self.fixed)

    def client(self) -> redis.Redis:
        """This process's Redis client, made on first use (never one shared across a fork)."""
        pid = os.getpid()
        if pid not in self._clients:
            self._clients[pid] = messages.connect(self.broker_url)
        return self._clients[pid]

    def group_share(self) -> tuple[float, list[str]]:
        """Update ``threads`` from the group's live workers (this one included); Redis's clock and the group's
        entries to prune."""
        now, uses, dead = registry.group_uses(self.client(), self.group)
        uses[self.name] = self.use
        if self.fixed is None:
            self.threads = share(self.cpus, uses.values())
        return now, dead

    def threads_for_job(self) -> int:
        """In a pool process, as a job starts: its threads, from the group as the registry has it now."""
        if self.fixed is None:
            try:
                self.group_share()
            except redis.RedisError as exc:
                log.warning("could not read this machine's workers (%s): the job gets %d threads", exc, self.threads)
        return self.threads

    def record(self) -> registry.WorkerRecord:
        return registry.WorkerRecord(
            name=self.name, host=self.host, device=str(self.device), pool=self.device.pool,
            queues=worker_queues(self.device, self.ledger, commands=self.commands), commands=self.commands,
            active_jobs=sorted(request.id for request in worker_state.active_requests), state=self.state,
            concurrency=self.concurrency, threads=self.threads,
            gpu=gpu_info(self.gpu_index) if self.gpu_index is not None else None)

    def refresh(self) -> None:
        """In the main process: rewrite this worker's entries (best effort: they outlive a few failed rounds)."""
        try:
            now, dead = self.group_share()
            registry.announce(self.client(), ledger=self.ledger, group=self.group, record=self.record(),
                              use=self.use, now=now, dead_in_group=dead)
        except redis.RedisError as exc:
            if not self.failing:
                log.warning("could not update this worker's entry in the registry (retrying every %g s): %s",
                            registry.REFRESH_S, exc)
            self.failing = True
            return
        if self.failing:
            log.warning("this worker's entry in the registry is up to date again")
        self.failing = False

    def leave(self) -> None:
        """Remove this worker's entries; without Redis they expire on their own."""
        try:
            registry.leave(self.client(), ledger=self.ledger, group=self.group, name=self.name)
        except redis.RedisError as exc:
            log.warning("could not remove this worker from the registry: %s", exc)


def install_presence(app: Celery, presence: Presence) -> None:
    """Enter ``presence`` in the registry before the worker consumes, and keep it fresh every ``REFRESH_S``
    seconds in its main process; mark it stopping when warm shutdown begins. ``Presence.leave`` removes it."""

    @worker_shutting_down.connect(weak=False)
    def _stopping(**_: object) -> None:  # in a signal handler: only a flag; the next refresh writes it
        presence.state = "stopping"

    class PresenceStep(bootsteps.StartStopStep):
        requires = {"celery.worker.components:Timer"}

        def start(self, worker: Any) -> None:
            presence.refresh()
            worker.timer.call_repeatedly(registry.REFRESH_S, presence.refresh)

        def stop(self, worker: Any) -> None:
            """Nothing: the prefork pool keeps firing timers while it drains, and the record must stay fresh
            until the last job ends."""

    app.steps["worker"].add(PresenceStep)

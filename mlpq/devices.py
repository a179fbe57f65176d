"""Device names (``cpu``, ``cuda``, ``cuda:N``), pools, and the names of the queues their jobs go to.

Torch-free and worker-free: the CLI, the UI and the worker all parse devices here. Pinning a process to
a GPU and probing GPUs live in ``mlpq.worker.device``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlpq.errors import InvalidError
from mlpq.redact import shown

DEVICE_PATTERN = re.compile(r"(cpu|cuda)(?::([0-9]{1,2}))?")
POOL_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
QUEUE_PREFIX = "mlpq."
COMMAND_KIND = "command"
"""The kind whose jobs run a user's program: they go to queues of their own, which only workers started with
``--allow-commands`` consume."""
COMMAND_QUEUE_SUFFIX = ".commands"


class DeviceError(InvalidError, ValueError):
    """A device string or pool name is malformed, or the device does not exist on this host."""


@dataclass(frozen=True)
class Device:
    """``cpu``, ``cuda`` (any GPU) or ``cuda:N``, optionally in a named pool of hosts."""

    type: str
    index: int | None = None
    pool: str | None = None
    """A group of hosts (one machine or several identical ones); ``None``: any host outside a pool."""

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def queue(self, ledger: str, *, commands: bool = False) -> str:
        """The Celery queue that ledger ``ledger``'s jobs for this device (in its pool) are sent to:
        ``mlpq.<ledger>.cuda:0`` or ``mlpq.<ledger>.<pool>.cuda:0``, and its command jobs to
        ``mlpq.<ledger>.cuda:0.commands`` (no pool or device name ends so). The one place queue names are
        made, so a worker only sees its own ledger's and pool's jobs, and command jobs only if it allows them."""
        pool = f"{self.pool}." if self.pool else ""
        return f"{ledger_queue_prefix(ledger)}{pool}{self}{COMMAND_QUEUE_SUFFIX if commands else ''}"


def ledger_queue_prefix(ledger: str) -> str:
    """What the names of ledger ``ledger``'s queues start with, e.g. ``mlpq.3f2a9c1b04d7.``."""
    return f"{QUEUE_PREFIX}{ledger}."


def parse_pool(text: str) -> str:
    """A pool name: 1 to 32 lower-case letters, digits, ``-`` or ``_``; raises ``DeviceError``."""
    if POOL_PATTERN.fullmatch(text) is None:
        raise DeviceError(f"invalid pool {shown(text)}: use 1 to 32 lower-case letters, digits, '-' or '_'")
    return text


def parse_device(text: str, pool: str | None = None) -> Device:
    """Parse ``cpu``, ``cuda`` or ``cuda:N`` (in ``pool``, if given); raises ``DeviceError``."""
    match = DEVICE_PATTERN.fullmatch(text.strip().lower())
    if match is None or (match[1] == "cpu" and match[2] is not None):
        raise DeviceError(f"invalid device {shown(text)}: use cpu, cuda or cuda:N")
    return Device(match[1], int(match[2]) if match[2] is not None else None, parse_pool(pool) if pool else None)


def job_queue(kind: str, device: str, pool: str | None, ledger: str) -> str:
    """The queue a job of ``kind`` for ``device`` in ``pool`` goes to."""
    return parse_device(device, pool).queue(ledger, commands=kind == COMMAND_KIND)


def worker_queues(device: Device, ledger: str, *, commands: bool = False) -> list[str]:
    """The queues a worker for ``device`` on ledger ``ledger`` consumes; a ``cuda:N`` worker also takes
    jobs sent to any GPU (``cuda``) of its pool; one that allows ``commands`` their command queues too."""
    devices = [device, Device("cuda", pool=device.pool)] if device.type == "cuda" else [device]
    kinds = (False, True) if commands else (False,)
    return [each.queue(ledger, commands=command) for command in kinds for each in devices]

"""The registry of live workers in Redis: what ``mlpq workers`` lists, and how the workers of a machine share its CPUs.

Each worker's main process writes its entries every ``REFRESH_S`` seconds, each valid for ``TTL_S``
seconds by Redis's own clock (so hosts' clocks never matter), and removes them when it exits; one that dies
without exiting drops out once its entries are older than that. Two hashes, field = the worker's node name:

- ``mlpq:<ledger>:workers``: its ``WorkerRecord`` (JSON), for ``mlpq workers``;
- ``mlpq:cpus:<group>``: what it takes of its CPU group (``mlpq.worker.threads``), shared by every ledger
  on this Redis.

Reading a hash is one round trip (Redis's clock and the hash); readers skip expired and malformed entries and
remove those expired for another ``TTL_S`` (long enough that no live worker rewrites one as it is removed).
Nothing here imports Celery: the CLI reads the registry with a plain Redis client.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mlpq.worker.threads import CpuUse

if TYPE_CHECKING:
    import redis

REFRESH_S = 2.0
"""How often a worker's main process rewrites its entries."""
TTL_S = 15.0
"""How long an entry stays valid unless rewritten: several refreshes, and a maintenance round that holds the
worker's event loop for a while."""


class WorkerRecord(BaseModel):
    """One worker as ``mlpq workers`` shows it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    host: str
    device: str
    pool: str | None
    queues: list[str]
    active_jobs: list[str]
    state: Literal["running", "stopping"]
    """``stopping``: in warm shutdown, finishing its jobs, taking no new ones."""
    concurrency: int
    threads: int
    """Torch threads each of its pool processes gives a job starting now."""
    gpu: dict[str, Any] | None
    """``mlpq.worker.nvml.gpu_info``'s answer; ``None`` for a CPU worker or when NVML cannot say."""
    commands: bool = False
    """Whether it runs command jobs (``mlpq worker --allow-commands``)."""


def ledger_key(ledger: str) -> str:
    return f"mlpq:{ledger}:workers"


def group_key(group: str) -> str:
    return f"mlpq:cpus:{group}"


def read(client: redis.Redis, key: str) -> tuple[float, dict[str, dict[str, Any]], list[str]]:
    """Redis's clock, the live entries of hash ``key`` (node name → decoded entry) and the names of the long
    expired or malformed ones, in one round trip."""
    (seconds, micros), raw = client.pipeline(transaction=False).time().hgetall(key).execute()
    now = seconds + micros / 1e6
    live, dead = {}, []
    for field, value in raw.items():
        name = field.decode(errors="replace")
        try:
            entry = json.loads(value)
            expires = float(entry["expires"])
        except (ValueError, TypeError, KeyError):
            dead.append(name)
            continue
        if expires > now:
            live[name] = entry
        elif expires < now - TTL_S:
            dead.append(name)
    return now, live, dead


def group_uses(client: redis.Redis, group: str) -> tuple[float, dict[str, CpuUse], list[str]]:
    """Redis's clock, what each live worker of CPU group ``group`` takes, and the entries to prune."""
    now, live, dead = read(client, group_key(group))
    uses = {}
    for name, entry in live.items():
        try:
            uses[name] = CpuUse(int(entry["processes"]), None if entry["threads"] is None else int(entry["threads"]))
        except (KeyError, ValueError, TypeError):
            dead.append(name)
    return now, uses, dead


def announce(client: redis.Redis, *, ledger: str, group: str, record: WorkerRecord, use: CpuUse, now: float,
             dead_in_group: Iterable[str] = ()) -> None:
    """Write a worker's record and its CPU use, valid until ``TTL_S`` after ``now`` (Redis's clock), and remove
    the group's dead entries, in one round trip."""
    expires = now + TTL_S
    pipeline = client.pipeline(transaction=False)
    pipeline.hset(ledger_key(ledger), record.name, json.dumps({**record.model_dump(), "expires": expires}))
    pipeline.expire(ledger_key(ledger), int(TTL_S) + 1)
    pipeline.hset(group_key(group), record.name,
                  json.dumps({"processes": use.processes, "threads": use.threads, "expires": expires}))
    pipeline.expire(group_key(group), int(TTL_S) + 1)
    dead = list(dead_in_group)
    if dead:
        pipeline.hdel(group_key(group), *dead)
    pipeline.execute()


def leave(client: redis.Redis, *, ledger: str, group: str, name: str) -> None:
    """Remove worker ``name``'s entries."""
    client.pipeline(transaction=False).hdel(ledger_key(ledger), name).hdel(group_key(group), name).execute()


def live_workers(client: redis.Redis, ledger: str) -> tuple[list[WorkerRecord], list[str]]:
    """Ledger ``ledger``'s live workers, sorted by name, and the entries to prune."""
    _, live, dead = read(client, ledger_key(ledger))
    records = []
    for name, entry in sorted(live.items()):
        try:
            records.append(WorkerRecord.model_validate(entry))
        except ValidationError:
            dead.append(name)
    return records, dead


def queue_lengths(client: redis.Redis, queues: Iterable[str], *, ledger: str,
                  prune: Iterable[str] = ()) -> Mapping[str, int]:
    """The length of each of ``queues``, removing ledger ``ledger``'s dead entries ``prune``, in one round trip."""
    queues, dead = sorted(set(queues)), list(prune)
    pipeline = client.pipeline(transaction=False)
    for queue in queues:
        pipeline.llen(queue)
    if dead:
        pipeline.hdel(ledger_key(ledger), *dead)
    return dict(zip(queues, pipeline.execute()))

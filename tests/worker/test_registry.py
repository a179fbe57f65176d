"""The registry of live workers on a real Redis: records valid by Redis's clock, what a machine's workers take of
its CPUs, and the threads a job starting now gets."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import redis

from mlpq.worker import registry
from mlpq.worker.device import Device
from mlpq.worker.registry import TTL_S, WorkerRecord
from mlpq.worker.status import Presence
from mlpq.worker.threads import CpuUse

LEDGER, GROUP = "3f2a9c1b04d7", "0123456789abcdef"


@pytest.fixture
def client(broker_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(broker_url)
    yield connection
    connection.close()


def record(name: str, **fields: object) -> WorkerRecord:
    return WorkerRecord.model_validate({
        "name": name, "host": "box", "device": "cpu", "pool": None, "queues": [f"mlpq.{LEDGER}.cpu"],
        "active_jobs": [], "state": "running", "concurrency": 1, "threads": 4, "gpu": None, **fields})


def redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def presence(broker_url: str, name: str, concurrency: int = 1, fixed: int | None = None) -> Presence:
    return Presence(broker_url, LEDGER, name, "box", Device("cpu"), concurrency, None, cpus=8, group=GROUP,
                    fixed=fixed)


def test_a_record_is_listed_until_it_expires_or_its_worker_leaves(client: redis.Redis) -> None:
    now = redis_now(client)
    registry.announce(client, ledger=LEDGER, group=GROUP, record=record("b@box", active_jobs=["a" * 32]),
                      use=CpuUse(1), now=now)
    registry.announce(client, ledger=LEDGER, group=GROUP, record=record("a@box", state="stopping"),
                      use=CpuUse(1), now=now)
    registry.announce(client, ledger=LEDGER, group=GROUP, record=record("expired@box"), use=CpuUse(1),
                      now=now - TTL_S - 1)
    registry.announce(client, ledger="otherledger", group=GROUP, record=record("other@box"), use=CpuUse(1), now=now)
    listed, dead = registry.live_workers(client, LEDGER)
    assert listed == [record("a@box", state="stopping"), record("b@box", active_jobs=["a" * 32])]
    assert dead == []  # expired only just: left for its worker to rewrite, never removed under it

    registry.leave(client, ledger=LEDGER, group=GROUP, name="a@box")
    assert [found.name for found in registry.live_workers(client, LEDGER)[0]] == ["b@box"]
    assert set(registry.group_uses(client, GROUP)[1]) == {"b@box", "other@box"}


def test_malformed_and_long_expired_entries_are_skipped_and_pruned(client: redis.Redis) -> None:
    now = redis_now(client)
    registry.announce(client, ledger=LEDGER, group=GROUP, record=record("live@box"), use=CpuUse(1), now=now)
    registry.announce(client, ledger=LEDGER, group=GROUP, record=record("gone@box"), use=CpuUse(1),
                      now=now - 2 * TTL_S - 1)
    key = registry.ledger_key(LEDGER)
    client.hset(key, mapping={"junk": b"\x1b]0;not json\x07", "list": "[1]",
                              "shape": json.dumps({"name": "shape", "expires": now + 60})})
    listed, dead = registry.live_workers(client, LEDGER)
    assert [found.name for found in listed] == ["live@box"]
    assert sorted(dead) == ["gone@box", "junk", "list", "shape"]
    assert registry.queue_lengths(client, [f"mlpq.{LEDGER}.cpu"], ledger=LEDGER, prune=dead) == {
        f"mlpq.{LEDGER}.cpu": 0}
    assert client.hkeys(key) == [b"live@box"]


def test_a_job_starting_after_a_second_worker_joined_gets_fewer_threads(broker_url: str) -> None:
    first, second = presence(broker_url, "first@box"), presence(broker_url, "second@box", concurrency=3)
    assert first.threads_for_job() == 8  # alone on 8 CPUs
    second.refresh()
    assert first.threads_for_job() == 2  # four processes share them
    assert second.threads_for_job() == 2
    first.refresh()
    pinned = presence(broker_url, "pinned@box", fixed=2)
    pinned.refresh()
    assert pinned.threads_for_job() == 2
    assert first.threads_for_job() == 1  # 8 - 2 pinned, over 4 processes
    second.leave()
    assert first.threads_for_job() == 6
    assert [found.threads for found in registry.live_workers(first.client(), LEDGER)[0]] == [2, 2]


def test_a_job_keeps_the_last_share_when_the_registry_cannot_be_read() -> None:
    alone = presence("redis://127.0.0.1:1/0", "first@box", concurrency=2)
    assert alone.threads_for_job() == 4


def test_a_broker_outage_is_logged_once_and_its_end_once(broker_url: str, caplog: pytest.LogCaptureFixture) -> None:
    worker = presence(broker_url, "first@box")
    real = worker.client()
    worker._clients[os.getpid()] = redis.Redis.from_url("redis://127.0.0.1:1/0")  # as if the broker were down
    for _ in range(3):
        worker.refresh()
    worker._clients[os.getpid()] = real
    worker.refresh()
    worker.refresh()
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == [
        "could not update this worker's entry in the registry",
        "this worker's entry in the registry is up to date again"]
    assert [found.name for found in registry.live_workers(real, LEDGER)[0]] == ["first@box"]

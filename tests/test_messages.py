"""The one publisher writes the message Celery's send_task would, and the end signal wakes a waiter."""

from __future__ import annotations

import ast
import json
import threading
import time
from pathlib import Path

import redis

from mlpq.config import Settings
from mlpq.devices import parse_device
from mlpq import messages
from mlpq.worker.app import create_app

MLPQ = Path(messages.__file__).resolve().parent


class Job:
    def __init__(self, job_id: str, device: str = "cuda:1", timeout_s: int = 77, pool: str | None = "a100") -> None:
        self.id, self.device, self.timeout_s, self.pool, self.kind = job_id, device, timeout_s, pool, "mnist"


def queued(client: redis.Redis, queue: str) -> dict:
    message = json.loads(client.rpop(queue))
    message["properties"].pop("delivery_tag")
    message["properties"].pop("reply_to")
    message["headers"].pop("origin")
    return message


def test_the_lean_message_is_the_one_celery_sends(broker_url: str) -> None:
    client = redis.Redis.from_url(broker_url)
    job = Job("ab" * 16)
    settings = Settings(broker_url=broker_url)
    grace_s = settings.leases.hard_limit_grace_s
    queue = parse_device(job.device, job.pool).queue("ledger1")
    create_app(settings).send_task(messages.TASK_NAME, args=[job.id], task_id=job.id, queue=queue,
                                   soft_time_limit=job.timeout_s, time_limit=job.timeout_s + grace_s)
    sent: list[str] = []
    messages.publish(client, "ledger1", [job], sent, grace_s=grace_s)
    assert sent == [job.id] and client.llen(queue) == 2
    assert queued(client, queue) == queued(client, queue)


def calls(path: Path) -> set[str]:
    """The names of the functions and methods that the module at ``path`` calls."""
    return {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)}


def test_jobs_are_published_in_one_place() -> None:
    """Neither the CLI nor the workers publish through Celery (``send_task``, a producer): one publisher."""
    through_celery = {str(path.relative_to(MLPQ)): found for path in MLPQ.rglob("*.py")
                      if (found := calls(path) & {"send_task", "apply_async", "delay", "producer_or_acquire", "Producer"})}
    assert through_celery == {}


def test_the_end_signal_wakes_every_waiter_at_once(broker_url: str) -> None:
    client = redis.Redis.from_url(broker_url)
    job_id = "cd" * 16
    assert not messages.wait_done(client, job_id, 0.1)
    threading.Timer(0.3, messages.signal_done, (redis.Redis.from_url(broker_url), job_id, "succeeded")).start()
    began = time.monotonic()
    assert messages.wait_done(client, job_id, 30)
    assert time.monotonic() - began < 10  # woken by the signal, not the 30 s timeout
    assert messages.wait_done(client, job_id, 0.1)  # a second waiter sees it too
    assert 0 < client.ttl(messages.done_key(job_id)) <= messages.DONE_TTL_S

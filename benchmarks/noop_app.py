"""A bare Celery app for queue_overhead.py: one no-op task, configured like mlpq's app (JSON, late acks, prefetch 1).

The task records when it ran in a Redis list, so the benchmark can time it
without a result backend. The broker is read from BENCH_BROKER_URL.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")
QUEUE = "bench.noop"
DONE_KEY = "bench:done"

app = Celery("noop", broker=BROKER_URL, set_as_current=False)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    worker_send_task_events=False,
)
done = redis.Redis.from_url(BROKER_URL)


@app.task(name="bench.noop")
def noop(sent_at: float) -> None:
    """Record (sent, finished) wall-clock times."""
    done.rpush(DONE_KEY, f"{sent_at} {time.time()}")

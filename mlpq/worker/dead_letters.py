"""The dead-letter list: malformed messages taken off mlpq's queues, with why, capped, newest first, in Redis."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import redis

from mlpq.redact import cut

DEAD_LETTERS_KEY = "mlpq:dead-letters"
CAPACITY = 1000
"""The list keeps this many letters; older ones are dropped."""
KEPT_CHARS = 2000
"""How much of a message a letter keeps."""


@dataclass(frozen=True)
class DeadLetter:
    """A message refused before it reached Celery: when, from which queue, why, and its start."""

    at: str
    queue: str
    reason: str
    message: str


def letter(queue: str, reason: str, raw: bytes) -> DeadLetter:
    """A letter stamped now, keeping the first ``KEPT_CHARS`` characters of ``raw``."""
    return DeadLetter(datetime.now(timezone.utc).isoformat(timespec="seconds"), queue, reason,
                      cut(raw.decode("utf-8", errors="replace"), KEPT_CHARS))


def record(client: redis.Redis, dead: DeadLetter) -> None:
    """Add ``dead`` to the front of the list and drop what is over ``CAPACITY``, atomically."""
    with client.pipeline(transaction=True) as pipe:
        pipe.lpush(DEAD_LETTERS_KEY, json.dumps(asdict(dead)))
        pipe.ltrim(DEAD_LETTERS_KEY, 0, CAPACITY - 1)
        pipe.execute()


def newest(client: redis.Redis, limit: int) -> list[DeadLetter]:
    """Up to ``limit`` letters, newest first."""
    return [DeadLetter(**json.loads(entry)) for entry in client.lrange(DEAD_LETTERS_KEY, 0, limit - 1)]

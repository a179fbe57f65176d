"""The dead-letter list of a ledger: malformed messages taken off its queues, with why, capped, newest first,
in Redis."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone

import redis

from mlpq.redact import cut

CAPACITY = 1000
"""The list keeps this many letters; older ones are dropped."""
KEPT_CHARS = 2000
"""How much of a message a letter keeps."""


def dead_letters_key(ledger: str) -> str:
    """The Redis list of ledger ``ledger``'s dead letters (each ledger sharing a Redis has its own)."""
    return f"mlpq:{ledger}:dead-letters"


@dataclass(frozen=True)
class DeadLetter:
    """A message refused before it reached Celery: when, from which queue, why, and its start."""

    at: str
    queue: str
    reason: str
    message: str


FIELDS = frozenset(field.name for field in fields(DeadLetter))


@dataclass(frozen=True)
class DeadLetters:
    """The newest letters of the list at ``key``, and how many of its entries were not letters (skipped)."""

    key: str
    letters: list[DeadLetter]
    skipped: int = 0
    wrong_type: str | None = None
    """The Redis type of the key when it is not a list (it was then not read at all)."""


def letter(queue: str, reason: str, raw: bytes) -> DeadLetter:
    """A letter stamped now, keeping the first ``KEPT_CHARS`` characters of ``raw``."""
    return DeadLetter(datetime.now(timezone.utc).isoformat(timespec="seconds"), queue, reason,
                      cut(raw.decode("utf-8", errors="replace"), KEPT_CHARS))


def record(client: redis.Redis, ledger: str, dead: DeadLetter) -> None:
    """Add ``dead`` to the front of ledger ``ledger``'s list and drop what is over ``CAPACITY``, atomically."""
    key = dead_letters_key(ledger)
    with client.pipeline(transaction=True) as pipe:
        pipe.lpush(key, json.dumps(asdict(dead)))
        pipe.ltrim(key, 0, CAPACITY - 1)
        pipe.execute()


def parse(entry: bytes) -> DeadLetter | None:
    """The letter an entry of the list holds; ``None`` if it is not one (not JSON, other keys, not text)."""
    try:
        found = json.loads(entry)
    except ValueError:  # not JSON, or not UTF-8
        return None
    if not isinstance(found, dict) or found.keys() != FIELDS or not all(isinstance(v, str) for v in found.values()):
        return None
    return DeadLetter(**found)


def newest(client: redis.Redis, ledger: str, limit: int) -> DeadLetters:
    """Up to ``limit`` of ledger ``ledger``'s letters, newest first; entries that are not letters are skipped."""
    key = dead_letters_key(ledger)
    with client.pipeline(transaction=True) as pipe:  # the type and the entries as of one moment
        pipe.type(key)
        pipe.lrange(key, 0, limit - 1)
        kind, entries = pipe.execute(raise_on_error=False)  # LRANGE fails on a key of another type
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind not in ("list", "none"):
        return DeadLetters(key, [], wrong_type=kind)
    letters = [parsed for entry in entries if (parsed := parse(entry)) is not None]
    return DeadLetters(key, letters, skipped=len(entries) - len(letters))

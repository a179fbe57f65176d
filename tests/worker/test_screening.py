"""Screening what a worker pops off its queues: the reasons, the dead-letter list, kombu's channel on real Redis."""

from __future__ import annotations

import uuid
from queue import Empty
from typing import Any

import fakeredis
import pytest
import redis
from kombu import Connection

from mlpq.worker import dead_letters
from mlpq.worker.screening import LEDGER_OPTION, MalformedMessage, ScreeningTransport, read_message
from tests import messages


@pytest.mark.parametrize("kind", sorted(messages.REASONS))
def test_each_malformed_kind_is_refused_with_its_reason_in_one_short_line(kind: str) -> None:
    with pytest.raises(MalformedMessage) as refused:
        read_message(messages.malformed()[kind])
    reason = str(refused.value)
    assert messages.REASONS[kind] in reason
    assert "\n" not in reason and len(reason) < 250


def test_a_message_as_mlpq_publishes_it_passes_with_its_job_id() -> None:
    job_id = uuid.uuid4().hex
    assert read_message(messages.raw(messages.task_message(job_id)).encode()) == job_id


def test_a_huge_message_is_refused_quickly_and_quoted_short() -> None:
    with pytest.raises(MalformedMessage) as refused:
        read_message(b"redis://:" + b"x" * 200_000)
    assert len(str(refused.value)) < 200


LEDGER = "3f2a9c1b04d7"


def test_the_dead_letter_list_is_capped_and_newest_first() -> None:
    client = fakeredis.FakeRedis()
    for number in range(dead_letters.CAPACITY + 5):
        dead_letters.record(client, LEDGER, dead_letters.letter("mlpq.cpu", f"reason {number}", b"x" * 10_000))
    assert client.llen(dead_letters.dead_letters_key(LEDGER)) == dead_letters.CAPACITY
    newest = dead_letters.newest(client, LEDGER, 2)
    assert [letter.reason for letter in newest.letters] == [f"reason {dead_letters.CAPACITY + 4}",
                                                           f"reason {dead_letters.CAPACITY + 3}"]
    assert len(newest.letters[0].message) < dead_letters.KEPT_CHARS + 50 and newest.skipped == 0


def test_each_ledger_sharing_a_redis_has_its_own_dead_letters() -> None:
    client = fakeredis.FakeRedis()
    dead_letters.record(client, LEDGER, dead_letters.letter("mlpq.3f2a9c1b04d7.cpu", "mine", b"x"))
    dead_letters.record(client, "0123456789ab", dead_letters.letter("mlpq.0123456789ab.cpu", "theirs", b"y"))
    assert [letter.reason for letter in dead_letters.newest(client, LEDGER, 10).letters] == ["mine"]
    assert dead_letters.dead_letters_key(LEDGER) == "mlpq:3f2a9c1b04d7:dead-letters"


def test_entries_that_are_not_dead_letters_are_skipped_and_counted() -> None:
    client = fakeredis.FakeRedis()
    key = dead_letters.dead_letters_key(LEDGER)
    client.lpush(key, *messages.UNREADABLE_LETTERS)
    dead_letters.record(client, LEDGER, dead_letters.letter("mlpq.cpu", "a real one", b"x"))
    found = dead_letters.newest(client, LEDGER, 100)
    assert [letter.reason for letter in found.letters] == ["a real one"]
    assert (found.skipped, found.wrong_type, found.key) == (len(messages.UNREADABLE_LETTERS), None, key)


@pytest.mark.parametrize(("kind", "write"), [("string", lambda c, k: c.set(k, "x")),
                                              ("hash", lambda c, k: c.hset(k, "a", "b")),
                                              ("set", lambda c, k: c.sadd(k, "a"))])
def test_a_dead_letter_key_of_another_type_is_not_read(broker_url: str, kind: str, write: Any) -> None:
    client = redis.Redis.from_url(broker_url)
    write(client, dead_letters.dead_letters_key(LEDGER))
    found = dead_letters.newest(client, LEDGER, 10)
    assert (found.letters, found.wrong_type) == ([], kind)


def test_a_consumer_receives_only_well_formed_messages(broker_url: str) -> None:
    """kombu's consuming path (BRPOP, as a worker's) on real Redis: a malformed message never reaches its decoder."""
    job_id = uuid.uuid4().hex
    client = redis.Redis.from_url(broker_url)
    client.lpush("mlpq.cpu", "not json at all", messages.raw(messages.task_message(job_id)))
    with Connection(broker_url, transport=ScreeningTransport,
                    transport_options={LEDGER_OPTION: LEDGER}) as connection:
        with connection.SimpleQueue("mlpq.cpu", no_ack=True) as queue:
            assert queue.get(timeout=10).headers["id"] == job_id
            with pytest.raises(Empty):
                queue.get(timeout=0.5)
    [letter] = dead_letters.newest(client, LEDGER, 10).letters
    assert (letter.queue, letter.message) == ("mlpq.cpu", "not json at all")


def test_the_channel_dead_letters_malformed_messages_and_delivers_the_rest(broker_url: str) -> None:
    """kombu's own channel on real Redis (RPOP): a malformed message never reaches its decoder."""
    job_id = uuid.uuid4().hex
    with Connection(broker_url, transport=ScreeningTransport,
                    transport_options={LEDGER_OPTION: LEDGER}) as connection:
        channel = connection.default_channel
        client = channel.client
        client.lpush("mlpq.cpu", "not json at all", messages.raw(messages.task_message(job_id)))
        assert channel.basic_get("mlpq.cpu", no_ack=True) is None  # the malformed one, popped first: "nothing"
        assert channel.basic_get("mlpq.cpu", no_ack=True).headers["id"] == job_id
        [letter] = dead_letters.newest(client, LEDGER, 10).letters
    assert (letter.queue, letter.message) == ("?", "not json at all")
    assert letter.reason.startswith("not JSON")


def test_a_channel_without_a_ledger_is_refused(broker_url: str) -> None:
    with Connection(broker_url, transport=ScreeningTransport) as connection:
        with pytest.raises(ValueError, match=LEDGER_OPTION):
            connection.default_channel

"""Screening what a worker pops off its queues: the reasons, the dead-letter list, kombu's channel on real Redis."""

from __future__ import annotations

import uuid
from queue import Empty

import fakeredis
import pytest
from kombu import Connection

from mlpq.worker import dead_letters
from mlpq.worker.screening import MalformedMessage, ScreeningTransport, read_message
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


def test_the_dead_letter_list_is_capped_and_newest_first() -> None:
    client = fakeredis.FakeRedis()
    for number in range(dead_letters.CAPACITY + 5):
        dead_letters.record(client, dead_letters.letter("mlpq.cpu", f"reason {number}", b"x" * 10_000))
    assert client.llen(dead_letters.DEAD_LETTERS_KEY) == dead_letters.CAPACITY
    newest = dead_letters.newest(client, 2)
    assert [letter.reason for letter in newest] == [f"reason {dead_letters.CAPACITY + 4}",
                                                   f"reason {dead_letters.CAPACITY + 3}"]
    assert len(newest[0].message) < dead_letters.KEPT_CHARS + 50


def test_the_channel_dead_letters_malformed_messages_and_delivers_the_rest(broker_url: str) -> None:
    """kombu's own channel on real Redis: a malformed message never reaches its decoder."""
    job_id = uuid.uuid4().hex
    with Connection(broker_url, transport=ScreeningTransport) as connection:
        channel = connection.default_channel
        client = channel.client
        client.lpush("mlpq.cpu", "not json at all", messages.raw(messages.task_message(job_id)))
        with pytest.raises(Empty):
            channel._get("mlpq.cpu")  # the malformed one, popped first, comes back as "nothing"
        assert channel._get("mlpq.cpu")["headers"]["id"] == job_id
        [letter] = dead_letters.newest(client, 10)
    assert (letter.queue, letter.message) == ("?", "not json at all")
    assert letter.reason.startswith("not JSON")

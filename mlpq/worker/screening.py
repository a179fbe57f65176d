"""Screen every message a worker takes off its queues before kombu decodes it.

kombu's Redis transport decodes a popped message in the worker's main process;
one that is not JSON, or not a Celery envelope, raises there and stops the whole
worker (and it is restored, so the next worker stops too). Here the reply to
BRPOP (and RPOP) is checked first, in a transport of mlpq's own that kombu knows
by name: a message that is not a well-formed ``mlpq.run_job`` call with one job
id is moved to the dead-letter list, logged once, and the reply is treated as
empty, so the worker goes on with the next one.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from celery import Celery
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.objects import cached_property

from mlpq.redact import cut, shown
from mlpq.worker import dead_letters
from mlpq.messages import TASK_NAME

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"[0-9a-f]{32}")
NO_WORKFLOW = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
LEDGER_OPTION = "mlpq_ledger"


class MalformedMessage(ValueError):
    """A message on an mlpq queue that is not a well-formed task; the message says why."""


def job_id_of(payload: Any) -> str:
    """The job id of a decoded message as kombu's Redis transport stores it; raises ``MalformedMessage``."""
    if not isinstance(payload, dict):
        raise MalformedMessage(f"wrong envelope: a JSON {type(payload).__name__}, not an object")
    properties, headers = payload.get("properties"), payload.get("headers")
    if not isinstance(properties, dict) or not isinstance(properties.get("delivery_tag"), str):
        raise MalformedMessage("wrong envelope: no properties.delivery_tag")
    if not isinstance(headers, dict):
        raise MalformedMessage("wrong envelope: no headers")
    if payload.get("content-type") != "application/json" or payload.get("content-encoding") != "utf-8":
        raise MalformedMessage(f"content type {shown(payload.get('content-type'))} with encoding "
                               f"{shown(payload.get('content-encoding'))}: only application/json in utf-8")
    if properties.get("body_encoding") != "base64" or headers.get("compression"):
        raise MalformedMessage("wrong envelope: the body is not plain base64")
    if headers.get("task") != TASK_NAME:
        raise MalformedMessage(f"unknown task name {shown(headers.get('task'))}")
    try:
        body = json.loads(base64.b64decode(str(payload.get("body")), validate=True))
    except (binascii.Error, ValueError):
        raise MalformedMessage("wrong envelope: the body is not base64-encoded JSON") from None
    if not (isinstance(body, list) and len(body) == 3 and isinstance(body[0], list) and len(body[0]) == 1
            and body[1] == {}):
        raise MalformedMessage(f"wrong arguments: expected [[JOB_ID], {{}}, {{...}}], got {shown(body)}")
    if body[2] != NO_WORKFLOW and body[2] != {}:
        raise MalformedMessage("wrong envelope: callbacks, errbacks, chains and chords are not accepted")
    job_id = body[0][0]
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        raise MalformedMessage(f"not a job id: {shown(job_id)} (32 lowercase hex digits)")
    if headers.get("id") != job_id:
        raise MalformedMessage(f"wrong envelope: task id {shown(headers.get('id'))} is not the job id {job_id}")
    return job_id


def read_message(raw: bytes | str) -> str:
    """The job id of a raw message from a queue; raises ``MalformedMessage``."""
    try:
        payload = json.loads(raw)
    except (ValueError, TypeError):
        raise MalformedMessage(f"not JSON: {shown(bytes_to_str(raw) if isinstance(raw, bytes) else raw)}") from None
    return job_id_of(payload)


class ScreeningChannel(kombu_redis.Channel):
    """kombu's Redis channel, but messages that are not well-formed mlpq tasks are dead-lettered, not decoded.

    Every Redis client the channel hands out (``client``, which BRPOPs, and
    ``conn_or_acquire``, which RPOPs) gets response callbacks (redis-py's
    ``set_response_callback``) that pass each popped message through ``_screen``
    and turn a refused one into an empty reply.
    """

    from_transport_options = (*kombu_redis.Channel.from_transport_options, LEDGER_OPTION)
    mlpq_ledger = ""
    """The ledger whose queues the worker consumes (transport option ``mlpq_ledger``): its dead-letter list."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.mlpq_ledger:
            raise ValueError(f"a screening channel needs the transport option {LEDGER_OPTION}")

    @cached_property
    def client(self) -> redis.Redis:
        return self._screening(super().client)

    @contextmanager
    def conn_or_acquire(self, client: redis.Redis | None = None) -> Iterator[redis.Redis]:
        with super().conn_or_acquire(client) as acquired:
            yield self._screening(acquired)

    def _screening(self, client: redis.Redis) -> redis.Redis:
        client.set_response_callback("BRPOP", self._screened_brpop)
        client.set_response_callback("RPOP", self._screened_rpop)
        return client

    def _screened_brpop(self, response: Any, **_: Any) -> tuple[bytes, bytes] | None:
        if not response:
            return None
        key, item = response
        return (key, item) if self._screen(key, item) else None

    def _screened_rpop(self, response: Any, **_: Any) -> Any:
        return response if not isinstance(response, bytes) or self._screen(None, response) else None

    def _screen(self, key: bytes | None, item: bytes) -> bool:
        """Whether ``item`` may go on to kombu; if not, it is dead-lettered and logged in one line."""
        try:
            read_message(item)
            return True
        except MalformedMessage as exc:
            reason = str(exc)
        queue = bytes_to_str(key).rsplit(self.sep, 1)[0] if key else "?"
        log.warning("dead-lettered a malformed message from %s: %s", cut(queue), reason)
        try:
            with self.conn_or_acquire() as client:
                dead_letters.record(client, self.mlpq_ledger, dead_letters.letter(queue, reason, item))
        except redis.RedisError as exc:
            log.error("could not keep the malformed message in the dead-letter list: %s", exc)
        return False


class ScreeningTransport(kombu_redis.Transport):
    """kombu's Redis transport with ``ScreeningChannel``; workers consume through it."""

    Channel = ScreeningChannel


TRANSPORT_ALIAS = "mlpq-redis"
"""The name the worker's log gives the transport (``Connected to mlpq-redis://:**@host:6379/0``)."""


def consume_screened(app: Celery, ledger: str) -> None:
    """Make ``app`` (a worker's on ledger ``ledger``) connect through ``ScreeningTransport``, registered with
    kombu by name.

    Its TLS options are the app's ``broker_use_ssl`` (see ``create_app``), whatever the URL's scheme.
    """
    TRANSPORT_ALIASES[TRANSPORT_ALIAS] = f"{__name__}:ScreeningTransport"
    app.conf.broker_transport = TRANSPORT_ALIAS
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, LEDGER_OPTION: ledger}

"""The one publisher: Celery task messages for job ids, pushed straight onto Redis.

``mlpq submit`` publishes here, and so do the workers' reaper and reconciler
(over their Celery connection's Redis client). Importing and configuring Celery
costs a CLI more than the whole submit, and ``send_task`` is slower per message
too. A job's message is small and fixed: Celery's task protocol 2 with the job id
as the only argument and as the task id, the time limits in its headers, in
kombu's Redis envelope on the default exchange (a list named after the queue).
Workers read it as any message ``Celery.send_task`` sends (a test checks the two
agree). Workers also signal here when a job ends, so a waiting CLI wakes at once.
Every Redis client here takes its TLS options from ``locations.broker_tls``,
as the workers' Celery connection does.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from mlpq.devices import job_queue
from mlpq.errors import UnavailableError
from mlpq.locations import broker_tls
from mlpq.redact import mask_url

if TYPE_CHECKING:
    import redis

TASK_NAME = "mlpq.run_job"
DONE_KEY_PREFIX = "mlpq.done."
DONE_TTL_S = 3600
CONNECT_TIMEOUT_S = 3


class Publishable(Protocol):
    id: str
    kind: str
    device: str
    pool: str | None
    timeout_s: int


def task_message(job: Publishable, ledger: str, grace_s: float) -> dict[str, object]:
    """The message ``send_task(TASK_NAME, args=[job.id], task_id=job.id, ...)`` would put on the job's queue
    of ledger ``ledger``, with a hard time limit ``grace_s`` (``Leases.hard_limit_grace_s``) after the soft one."""
    body = [[job.id], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    return {
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": TASK_NAME, "id": job.id, "shadow": None, "eta": None, "expires": None,
            "group": None, "group_index": None, "retries": 0,
            "timelimit": [job.timeout_s + grace_s, job.timeout_s], "root_id": job.id, "parent_id": None,
            "argsrepr": repr([job.id]), "kwargsrepr": "{}", "origin": f"gen{os.getpid()}@{socket.gethostname()}",
            "ignore_result": None, "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
        },
        "properties": {
            "correlation_id": job.id, "reply_to": "", "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": job_queue(job.kind, job.device, job.pool, ledger)},
            "priority": 0, "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
        },
    }


class BrokerTLSError(UnavailableError, ConnectionError):
    """A ``rediss://`` broker answered but TLS with it failed (above all: its certificate cannot be verified)."""


def connect(broker_url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> redis.Redis:
    """A Redis client that waits ``timeout_s`` seconds to connect and 5 more for an answer (nothing connects
    yet), verifying a ``rediss://`` broker's certificate."""
    import redis

    url, tls = broker_tls(broker_url)
    return redis.Redis.from_url(url, **(tls or {}), socket_connect_timeout=timeout_s, socket_timeout=timeout_s + 5)


def check_tls(broker_url: str) -> None:
    """Raise ``BrokerTLSError`` if a ``rediss://`` broker cannot be spoken to over TLS: retrying would not help.

    A broker that does not answer at all is left to the caller's retries.
    """
    if broker_tls(broker_url)[1] is None:
        return
    import redis

    client = connect(broker_url)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, (ssl.SSLError, FileNotFoundError, PermissionError)):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, ssl.SSLCertVerificationError):
            raise BrokerTLSError(f"cannot verify the broker's TLS certificate at {mask_url(broker_url)}: {cause}; "
                                 f"name its CA with ?ssl_ca_certs=PATH") from None
        if cause is not None:
            raise BrokerTLSError(f"TLS to the broker at {mask_url(broker_url)} failed: {cause}") from None
    finally:
        client.close()


def publish(client: redis.Redis, ledger: str, jobs: Iterable[Publishable], sent: list[str], *,
            grace_s: float) -> None:
    """LPUSH each job's message onto its queue of ledger ``ledger`` (kombu's Redis transport pops from the
    right), appending each id to ``sent`` once Redis has it."""
    for job in jobs:
        queue = job_queue(job.kind, job.device, job.pool, ledger)
        client.lpush(queue, json.dumps(task_message(job, ledger, grace_s)))
        sent.append(job.id)


def done_key(job_id: str) -> str:
    return DONE_KEY_PREFIX + job_id


def signal_done(client: redis.Redis, job_id: str, status: str) -> None:
    """Wake whoever waits for ``job_id`` (its ended status is in the ledger already)."""
    client.pipeline().lpush(done_key(job_id), status).expire(done_key(job_id), DONE_TTL_S).execute()


def wait_done(client: redis.Redis, job_id: str, timeout_s: float) -> bool:
    """Block up to ``timeout_s`` for the job's end signal; leaves the signal for other waiters."""
    popped = client.blpop([done_key(job_id)], timeout=timeout_s)
    if popped is None:
        return False
    signal_done(client, job_id, popped[1].decode())
    return True

"""The Celery application (JSON only, late acks, one job reserved at a time) and publishing job ids."""

from __future__ import annotations

from collections.abc import Iterable

from celery import Celery

from mlpq.config import Settings
from mlpq.locations import broker_tls
from mlpq.db.records import JobRecord
from mlpq.devices import parse_device
from mlpq.worker.messages import TASK_NAME

VISIBILITY_TIMEOUT_S = 48 * 3600
"""Longer than any job may run (24 h): Redis redelivers unacknowledged messages after this long."""
GRACE_SETTING = "mlpq_hard_limit_grace_s"
"""Where ``create_app`` keeps ``Leases.hard_limit_grace_s`` in the app's configuration, for ``publish``."""


def create_app(settings: Settings) -> Celery:
    """A Celery app for ``settings.broker_url``, with its TLS options as the CLI takes them (``broker_tls``).
    Nothing depends on a result backend."""
    url, tls = broker_tls(settings.broker_url)
    app = Celery("mlpq", broker=url, set_as_current=False)
    app.conf.update(
        broker_use_ssl=tls or False,
        task_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        broker_connection_timeout=3,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5,
                                   "interval_max": 1},
        worker_send_task_events=False,
    )
    app.conf[GRACE_SETTING] = settings.leases.hard_limit_grace_s
    return app


def publish(app: Celery, ledger: str, jobs: Iterable[JobRecord], sent: list[str] | None = None) -> None:
    """Send each job's id to its device's (and pool's) queue of ledger ``ledger`` over one connection,
    appending each sent id to ``sent``.

    The Celery task id is the job id, so the reconciler can tell which jobs the broker holds.
    """
    grace_s = app.conf[GRACE_SETTING]
    with app.producer_or_acquire() as producer:
        for job in jobs:
            app.send_task(TASK_NAME, args=[job.id], task_id=job.id,
                          queue=parse_device(job.device, job.pool).queue(ledger),
                          soft_time_limit=job.timeout_s, time_limit=job.timeout_s + grace_s,
                          producer=producer)
            if sent is not None:
                sent.append(job.id)

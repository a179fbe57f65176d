"""The Celery application: JSON only, late acks, one job reserved at a time.

Jobs are published by ``mlpq.messages.publish``, by the CLI and the workers alike.
"""

from __future__ import annotations

from celery import Celery

from mlpq.config import Settings
from mlpq.locations import broker_tls

VISIBILITY_TIMEOUT_S = 48 * 3600
"""Longer than any job may run (24 h): Redis redelivers unacknowledged messages after this long."""


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
        worker_send_task_events=False,
    )
    return app

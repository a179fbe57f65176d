"""The Celery application: JSON only, late acks, one job reserved at a time."""

from __future__ import annotations

from celery import Celery

from mlpq.config import Settings

TASK_NAME = "mlpq.run_job"
VISIBILITY_TIMEOUT_S = 48 * 3600
"""Longer than any job may run: Redis redelivers unacked messages after this long."""


def create_app(settings: Settings) -> Celery:
    """A Celery app for ``settings.broker_url``. Nothing depends on a result backend."""
    app = Celery("mlpq", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
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
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5,
                                   "interval_max": 1},
        worker_send_task_events=False,
    )
    return app

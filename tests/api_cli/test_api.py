"""``Client`` hands out frozen dataclasses built inside the transaction, never SQLAlchemy objects."""

from __future__ import annotations

import dataclasses

import pytest

from mlpq.api_cli.api import Client
from mlpq.config import Settings
from mlpq.db import jobs
from mlpq.db.records import JobRecord, MetricRecord


def stored_job(api: Client) -> str:
    with api.engine.begin() as connection:
        job = jobs.create_job(connection, "himmelblau", {"seed": 1, "steps": 4}, "cpu", timeout_s=60)
        jobs.claim_job(connection, job.id, "host")
        jobs.add_metrics(connection, job.id, 1, [(0, {"f_best": 2.0}), (2, {"f_best": 1.0})])
        return job.id


def plain(value: object) -> bool:
    return type(value).__module__.split(".")[0] != "sqlalchemy"


def test_get_list_and_cancel_return_frozen_records_usable_after_the_transaction() -> None:
    api = Client(Settings.from_env())
    job_id = stored_job(api)
    view = api.get(job_id[:6])
    assert isinstance(view.job, JobRecord) and view.job.id == job_id and view.job.attempts == 1
    assert view.metrics == (MetricRecord(0, {"f_best": 2.0}), MetricRecord(2, {"f_best": 1.0}))
    [listed] = api.list()
    assert listed == view.job and all(plain(getattr(listed, f.name)) for f in dataclasses.fields(listed))
    cancelled, _ = api.cancel(job_id)
    assert isinstance(cancelled, JobRecord) and cancelled.cancel_requested
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.job.status = cancelled.status  # type: ignore[misc]

"""Each attempt of a job has its row (where, how it ended, where it resumed), and the job's metrics read as
one curve across attempts, every attempt's rows kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from mlpq.api_cli.output import attempt_text
from mlpq.db import jobs
from mlpq.db.engine import make_engine
from mlpq.db.schema import METRICS
from mlpq.db.status import JobStatus


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def epochs(*steps: int) -> list[tuple[int, dict[str, float]]]:
    return [(step, {"loss": float(step)}) for step in steps]


def lose(engine: Engine, job_id: str) -> None:
    """The lease of the job's running attempt expires and the job is queued again."""
    with engine.begin() as connection:
        requeued = jobs.requeue_expired(connection, lease=timedelta(seconds=-60), max_attempts=5,
                                        grace=timedelta(seconds=60))
    assert [job.id for job in requeued] == [job_id]


def test_attempts_tell_where_each_ran_how_it_ended_and_where_it_resumed(engine: Engine) -> None:
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "mnist", {}, "cpu", timeout_s=600).id
        jobs.claim_job(connection, job_id, "host-a")
        jobs.add_metrics(connection, job_id, 1, epochs(1, 2, 3, 4))
    lose(engine, job_id)
    with engine.begin() as connection:
        jobs.claim_job(connection, job_id, "host-b")
        jobs.note_resumed(connection, job_id, 2, 5)
        jobs.add_metrics(connection, job_id, 2, epochs(5, 6))
        assert jobs.finish_job(connection, job_id, 2, JobStatus.SUCCEEDED, result={})
        first, second = jobs.attempts_of(connection, job_id)
    assert (first.attempt, first.worker_host, first.outcome, first.resumed_at_step) == (1, "host-a", "worker lost", None)
    assert (second.attempt, second.worker_host, second.outcome, second.resumed_at_step) == (2, "host-b", "succeeded", 5)
    assert (first.first_step, first.last_step, second.first_step, second.last_step) == (1, 4, 5, 6)
    assert first.ended_at is not None and second.ended_at >= first.ended_at
    assert attempt_text(first, "epoch") == "attempt 1: epochs 1–4 on host-a (worker lost)"
    assert attempt_text(second, "epoch") == "attempt 2: resumed at epoch 5 on host-b (succeeded)"


def test_an_attempt_that_was_alive_when_it_lost_its_job_says_lease_lost(engine: Engine) -> None:
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "mnist", {}, "cpu", timeout_s=600).id
        jobs.claim_job(connection, job_id, "host-a")
    lose(engine, job_id)
    with engine.begin() as connection:
        jobs.end_attempt(connection, job_id, 1, jobs.LEASE_LOST)
        [attempt] = jobs.attempts_of(connection, job_id)
    assert attempt_text(attempt, "epoch") == "attempt 1: no epochs on host-a (lease lost)"


def curve(engine: Engine, job_id: str) -> list[tuple[int, float]]:
    with engine.connect() as connection:
        return [(m.step, m.values["loss"]) for m in jobs.latest_metrics(connection, jobs.find_job(connection, job_id))]


def test_the_metrics_are_one_curve_whose_every_step_is_the_latest_attempts(engine: Engine) -> None:
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "mnist", {}, "cpu", timeout_s=600).id
        jobs.claim_job(connection, job_id, "host-a")
        jobs.add_metrics(connection, job_id, 1, epochs(1, 2, 3, 4))
    lose(engine, job_id)
    with engine.begin() as connection:  # resumed after epoch 3: epoch 4 again, then 5
        jobs.claim_job(connection, job_id, "host-b")
        jobs.add_metrics(connection, job_id, 2, [(4, {"loss": 40.0}), (5, {"loss": 50.0})])
    assert curve(engine, job_id) == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0), (5, 50.0)]
    lose(engine, job_id)
    with engine.begin() as connection:  # started over: its steps replace the earlier attempts' curve
        jobs.claim_job(connection, job_id, "host-c")
        jobs.add_metrics(connection, job_id, 3, [(1, {"loss": 100.0})])
        kept = connection.scalar(select(func.count()).select_from(METRICS).where(METRICS.c.job_id == job_id))
    assert curve(engine, job_id) == [(1, 100.0)]
    assert kept == 7  # every attempt's rows stay

"""The ledger's state transitions and queries, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, tzinfo

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, insert

from mlpq.config import Settings
from mlpq.db import clock, jobs
from mlpq.db.lookup import is_job_id
from mlpq.db.schema import JOBS
from mlpq.db.status import JobStatus
from mlpq.db.engine import make_engine
from mlpq.locations import DatabaseURLError, normalise_database_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def queued(engine: Engine, kind: str = "himmelblau", device: str = "cpu") -> str:
    with engine.begin() as connection:
        return jobs.create_job(connection, kind, {"steps": 10}, device, timeout_s=60).id


def test_a_job_is_claimed_once(engine: Engine) -> None:
    job_id = queued(engine)
    with engine.begin() as connection:
        first = jobs.claim_job(connection, job_id, "host-a")
    with engine.begin() as connection:
        second = jobs.claim_job(connection, job_id, "host-b")
    assert first is not None and first.status is JobStatus.RUNNING and first.attempts == 1
    assert first.worker_host == "host-a" and first.started_at is not None
    assert second is None


def test_terminal_status_never_changes(engine: Engine) -> None:
    job_id = queued(engine)
    with engine.begin() as connection:
        assert not jobs.finish_job(connection, job_id, 1, JobStatus.SUCCEEDED, result={"f": 0})  # not running yet
        jobs.claim_job(connection, job_id, "host")
        assert not jobs.finish_job(connection, job_id, 2, JobStatus.SUCCEEDED, result={"f": 1})  # not this attempt
        assert jobs.finish_job(connection, job_id, 1, JobStatus.SUCCEEDED, result={"f": 0.5})
        assert not jobs.finish_job(connection, job_id, 1, JobStatus.FAILED, error="late")
        assert jobs.claim_job(connection, job_id, "host") is None
    with engine.connect() as connection:
        job = jobs.find_job(connection, job_id)
        assert (job.status, job.result, job.error) == (JobStatus.SUCCEEDED, {"f": 0.5}, None)
        assert job.finished_at is not None and job.finished_at >= job.started_at


def test_metrics_are_stored_per_attempt_in_step_order(engine: Engine) -> None:
    job_id = queued(engine)
    with engine.begin() as connection:
        job = jobs.claim_job(connection, job_id, "host")
        jobs.add_metrics(connection, job_id, 1, [(2, {"loss": 0.5}), (1, {"loss": 0.9})])
        jobs.add_metrics(connection, job_id, 0, [(1, {"loss": 7.0})])  # an earlier attempt's leftovers
    with engine.connect() as connection:
        job = jobs.find_job(connection, job_id)
        assert [(m.step, m.values) for m in jobs.latest_metrics(connection, job)] == [
            (1, {"loss": 0.9}), (2, {"loss": 0.5})]


def test_find_by_prefix(engine: Engine) -> None:
    ids = [queued(engine) for _ in range(3)]
    with engine.connect() as connection:
        assert jobs.find_job(connection, ids[0]).id == ids[0]
        assert jobs.find_job(connection, ids[1][:10]).id == ids[1]
        with pytest.raises(jobs.JobLookupError, match="no job"):
            jobs.find_job(connection, "ffff" if not any(i.startswith("ffff") for i in ids) else "0000")
    with engine.begin() as connection:
        connection.execute(insert(JOBS), [
            {"id": job_id, "kind": "mnist", "params": {}, "device": "cpu", "status": JobStatus.QUEUED, "timeout_s": 60}
            for job_id in ("aaaa1" + "0" * 27, "aaaa2" + "0" * 27)])
    with engine.connect() as connection, pytest.raises(jobs.JobLookupError, match="ambiguous"):
        jobs.find_job(connection, "aaaa")


def test_list_is_newest_first_and_filtered(engine: Engine) -> None:
    first = queued(engine, "himmelblau", "cpu")
    second = queued(engine, "mnist", "cuda:0")
    third = queued(engine, "mnist", "cpu")
    with engine.connect() as connection:
        assert [j.id for j in jobs.list_jobs(connection)] == [third, second, first]
        assert [j.id for j in jobs.list_jobs(connection, kind="mnist")] == [third, second]
        assert [j.id for j in jobs.list_jobs(connection, device="cuda:0")] == [second]
        assert [j.id for j in jobs.list_jobs(connection, status=JobStatus.RUNNING)] == []
        assert len(jobs.list_jobs(connection, limit=2)) == 2


def test_job_id_shapes() -> None:
    assert is_job_id(jobs.new_job_id())
    assert is_job_id("abcd")
    for bad in ("abc", "ABCD", "xyz1", "abcd%", "a" * 33, ""):
        assert not is_job_id(bad)


def test_database_urls() -> None:
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg2://u:pw@h:5433/db?sslmode=require"):
        assert normalise_database_url(url).startswith("postgresql+psycopg://")
    assert normalise_database_url("postgresql+psycopg2://u:pw@h:5433/db?sslmode=require").endswith(
        "://u:pw@h:5433/db?sslmode=require")
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"
    for bad in ("not a url", "mysql://u@h/db", "postgresql+asyncpg://u@h/db", "sqlite://", "sqlite:///:memory:",
                "sqlite:///file::memory:?uri=true", "sqlite:///file:x.db?mode=memory&uri=true"):
        with pytest.raises(DatabaseURLError):
            normalise_database_url(bad)


def submitting(engine: Engine, batch: str, count: int) -> list[str]:
    with engine.begin() as connection:
        return [jobs.create_job(connection, "himmelblau", {"steps": 10}, "cpu", timeout_s=60, batch_id=batch).id
                for _ in range(count)]


def test_a_batch_is_unclaimable_until_released_whole(engine: Engine) -> None:
    ids = submitting(engine, "b" * 32, 3)
    with engine.begin() as connection:
        assert jobs.claim_job(connection, ids[0], "host") is None
        assert jobs.job_status(connection, ids[0]) is JobStatus.SUBMITTING
        released = jobs.release_batch(connection, "b" * 32)
    assert sorted(job.id for job in released) == sorted(ids)
    assert {job.status for job in released} == {JobStatus.QUEUED}
    with engine.begin() as connection:
        assert jobs.claim_job(connection, ids[0], "host") is not None
        assert jobs.release_batch(connection, "b" * 32) == []  # a batch is released once


def test_a_withdrawn_batch_leaves_no_job_and_spares_the_released(engine: Engine) -> None:
    ids = submitting(engine, "c" * 32, 2)
    other = submitting(engine, "d" * 32, 1)
    with engine.begin() as connection:
        jobs.release_batch(connection, "d" * 32)
        assert jobs.withdraw_batch(connection, "c" * 32) == 2
        assert jobs.withdraw_batch(connection, "d" * 32) == 0
        assert jobs.batch_jobs(connection, "c" * 32) == []
        assert [job.id for job in jobs.batch_jobs(connection, "d" * 32)] == other
        assert jobs.job_status(connection, ids[0]) is None


def test_only_batches_left_unreleased_for_longer_than_the_age_are_withdrawn_as_abandoned(engine: Engine) -> None:
    from datetime import timedelta

    ids = submitting(engine, "e" * 32, 2)
    with engine.begin() as connection:
        assert jobs.withdraw_abandoned(connection, timedelta(hours=1)) == []
        assert sorted(jobs.withdraw_abandoned(connection, timedelta(seconds=-1))) == sorted(ids)
        job = jobs.find_job(connection, ids[0])
        assert (job.status, job.error, job.started_at) == (JobStatus.CANCELLED, jobs.ABANDONED, None)
        assert jobs.release_batch(connection, "e" * 32) == []  # its submit, coming back, releases nothing


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_the_python_api_refuses_an_in_memory_ledger_too(url: str) -> None:
    with pytest.raises(DatabaseURLError, match="in-memory"):
        make_engine(url)
    with pytest.raises(ValidationError, match="in-memory"):
        Settings(database_url=url)


def test_a_transactions_jobs_are_listed_newest_first_in_the_order_written(engine: Engine) -> None:
    with engine.begin() as connection:  # as a sweep's are submitted
        written = [jobs.create_job(connection, "himmelblau", {"steps": i}, "cpu", timeout_s=60).id
                   for i in range(40)]
    with engine.connect() as connection:
        assert [job.id for job in jobs.list_jobs(connection, limit=100)] == written[::-1]


SKEW = timedelta(minutes=5)


class BehindClock(datetime):
    """This host's clock, five minutes behind the database server's."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> BehindClock:
        return super().now(tz) - SKEW


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_job_is_created_at_the_database_servers_time(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "datetime", BehindClock)  # SQLite's server is this host: no skew is possible
    with engine.begin() as connection:
        job = jobs.create_job(connection, "himmelblau", {}, "cpu", timeout_s=60)
        server_now = clock.read_db_now(connection)
    assert abs(server_now - job.created_at) < timedelta(seconds=10) and job.created_at >= job.queued_at

"""The ledger's state transitions and queries, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mlpq.db import jobs
from mlpq.db.lookup import is_job_id
from mlpq.db.schema import Job, JobStatus
from mlpq.db.session import DatabaseURLError, make_session_factory, normalise_url


@pytest.fixture
def sessions(database_url: str) -> sessionmaker[Session]:
    factory = make_session_factory(database_url)
    yield factory
    factory.kw["bind"].dispose()


def queued(sessions: sessionmaker[Session], kind: str = "himmelblau", device: str = "cpu") -> str:
    with sessions.begin() as session:
        return jobs.create_job(session, kind, {"steps": 10}, device, timeout_s=60).id


def test_a_job_is_claimed_once(sessions: sessionmaker[Session]) -> None:
    job_id = queued(sessions)
    with sessions.begin() as session:
        first = jobs.claim_job(session, job_id, "host-a")
    with sessions.begin() as session:
        second = jobs.claim_job(session, job_id, "host-b")
    assert first is not None and first.status is JobStatus.RUNNING and first.attempts == 1
    assert first.worker_host == "host-a" and first.started_at is not None
    assert second is None


def test_terminal_status_never_changes(sessions: sessionmaker[Session]) -> None:
    job_id = queued(sessions)
    with sessions.begin() as session:
        assert not jobs.finish_job(session, job_id, 1, JobStatus.SUCCEEDED, result={"f": 0})  # not running yet
        jobs.claim_job(session, job_id, "host")
        assert not jobs.finish_job(session, job_id, 2, JobStatus.SUCCEEDED, result={"f": 1})  # not this attempt
        assert jobs.finish_job(session, job_id, 1, JobStatus.SUCCEEDED, result={"f": 0.5})
        assert not jobs.finish_job(session, job_id, 1, JobStatus.FAILED, error="late")
        assert jobs.claim_job(session, job_id, "host") is None
    with sessions() as session:
        job = jobs.find_job(session, job_id)
        assert (job.status, job.result, job.error) == (JobStatus.SUCCEEDED, {"f": 0.5}, None)
        assert job.finished_at is not None and job.finished_at >= job.started_at


def test_metrics_are_stored_per_attempt_in_step_order(sessions: sessionmaker[Session]) -> None:
    job_id = queued(sessions)
    with sessions.begin() as session:
        job = jobs.claim_job(session, job_id, "host")
        jobs.add_metrics(session, job_id, 1, [(2, {"loss": 0.5}), (1, {"loss": 0.9})])
        jobs.add_metrics(session, job_id, 0, [(1, {"loss": 7.0})])  # an earlier attempt's leftovers
    with sessions() as session:
        job = jobs.find_job(session, job_id)
        assert [(m.step, m.values) for m in jobs.latest_metrics(session, job)] == [
            (1, {"loss": 0.9}), (2, {"loss": 0.5})]


def test_find_by_prefix(sessions: sessionmaker[Session]) -> None:
    ids = [queued(sessions) for _ in range(3)]
    with sessions() as session:
        assert jobs.find_job(session, ids[0]).id == ids[0]
        assert jobs.find_job(session, ids[1][:10]).id == ids[1]
        with pytest.raises(jobs.JobLookupError, match="no job"):
            jobs.find_job(session, "ffff" if not any(i.startswith("ffff") for i in ids) else "0000")
    with sessions.begin() as session:
        for job_id in ("aaaa1" + "0" * 27, "aaaa2" + "0" * 27):
            session.add(Job(id=job_id, kind="mnist", params={}, device="cpu", status=JobStatus.QUEUED,
                            timeout_s=60))
    with sessions() as session, pytest.raises(jobs.JobLookupError, match="ambiguous"):
        jobs.find_job(session, "aaaa")


def test_list_is_newest_first_and_filtered(sessions: sessionmaker[Session]) -> None:
    first = queued(sessions, "himmelblau", "cpu")
    second = queued(sessions, "mnist", "cuda:0")
    third = queued(sessions, "mnist", "cpu")
    with sessions() as session:
        assert [j.id for j in jobs.list_jobs(session)] == [third, second, first]
        assert [j.id for j in jobs.list_jobs(session, kind="mnist")] == [third, second]
        assert [j.id for j in jobs.list_jobs(session, device="cuda:0")] == [second]
        assert [j.id for j in jobs.list_jobs(session, status=JobStatus.RUNNING)] == []
        assert len(jobs.list_jobs(session, limit=2)) == 2


def test_job_id_shapes() -> None:
    assert is_job_id(jobs.new_job_id())
    assert is_job_id("abcd")
    for bad in ("abc", "ABCD", "xyz1", "abcd%", "a" * 33, ""):
        assert not is_job_id(bad)


def test_database_urls() -> None:
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
    for bad in ("not a url", "mysql://u@h/db"):
        with pytest.raises(DatabaseURLError):
            normalise_url(bad)

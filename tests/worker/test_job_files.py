"""A job keeps files through its context: ``execute_job`` against real ledgers, in both stores."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from mlpq.db import jobs
from mlpq.db.artifacts import ArtifactStore, ArtifactStoreError
from mlpq.db.engine import make_engine
from mlpq.db.status import JobStatus
from mlpq.devices import Device
from mlpq.worker.execute import execute_job
from mlpq.worker.job_files import ArtifactNotKept, ArtifactSettings, JobFiles
from mlpq.worker.lease import LeaseKeeper
from tests.jobkinds.fault_kind import visible_here


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    with visible_here():
        yield engine
    engine.dispose()


@pytest.fixture(params=["ledger", "directory"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactSettings:
    return ArtifactSettings(tmp_path if request.param == "directory" else None, 1000)


def run_artifact_job(engine: Engine, tmp_path: Path, settings: ArtifactSettings, **params: Any) -> Any:
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "fault", {"action": "artifact", **params}, "cpu", timeout_s=60).id
    execute_job(engine, job_id, device=Device("cpu"), worker_host="test-host", data_dir=tmp_path,
                leases=LeaseKeeper(engine, 0.2), artifacts=settings)
    with engine.connect() as connection:
        return jobs.find_job(connection, job_id)


def test_a_job_keeps_an_artifact_as_its_attempt(engine: Engine, tmp_path: Path, settings: ArtifactSettings) -> None:
    job = run_artifact_job(engine, tmp_path, settings, name="model.pt", message="weights", repeat=3)
    data = b"weights" * 3
    assert job.status is JobStatus.SUCCEEDED
    assert job.result == {"sha256": hashlib.sha256(data).hexdigest(), "size": 21, "headline": "kept model.pt"}
    store = ArtifactStore(engine, settings.directory, settings.max_bytes)
    [record] = store.list(job.id)
    assert (record.name, record.attempt, record.size, record.sha256) == ("model.pt", 1, 21, job.result["sha256"])
    assert record.store == ("ledger" if settings.directory is None else "directory")
    assert b"".join(store.verified_chunks(record)) == data


@pytest.mark.parametrize(("params", "error"), [
    ({"message": "x", "repeat": 1001}, "artifact too large: out.bin is over 1000 bytes"),
    ({"name": "../evil", "message": "x"}, "bad artifact name: '../evil': no '/', '\\', '..' or NUL in an artifact name"),
])
def test_a_refused_artifact_fails_the_job_with_its_reason(engine: Engine, tmp_path: Path, settings: ArtifactSettings,
                                                         params: dict[str, Any], error: str) -> None:
    job = run_artifact_job(engine, tmp_path, settings, **params)
    assert (job.status, job.error) == (JobStatus.FAILED, error)
    assert ArtifactStore(engine, settings.directory, 1000).list(job.id) == []


def test_a_missing_directory_fails_the_job_with_its_reason(engine: Engine, tmp_path: Path) -> None:
    settings = ArtifactSettings(tmp_path / "unmounted", 1000)
    job = run_artifact_job(engine, tmp_path, settings, message="x")
    assert job.status is JobStatus.FAILED
    assert job.error == (f"artifact store unavailable: the artifact directory '{tmp_path}/unmounted' does not exist "
                         "(MLPQ_ARTIFACT_DIR; every worker must mount it)")


def job_files(engine: Engine, retry_s: float) -> JobFiles:
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "fault", {}, "cpu", timeout_s=60).id
    return JobFiles(engine, ArtifactSettings(), job_id, 1, lambda: None, retry_s)


def flaky_put(files: JobFiles, monkeypatch: pytest.MonkeyPatch, failures: list[Exception]) -> None:
    real_put = files.store.put

    def put(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop(0)
        return real_put(*args, **kwargs)

    monkeypatch.setattr(files.store, "put", put)


def outage() -> OperationalError:
    return OperationalError("INSERT", {}, Exception("connection refused"))


def test_a_database_or_directory_outage_is_retried(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    files = job_files(engine, retry_s=30)
    failures: list[Exception] = [outage(), ArtifactStoreError("stale NFS handle", transient=True)]
    flaky_put(files, monkeypatch, failures)
    monkeypatch.setattr("mlpq.worker.job_files.time.sleep", lambda _: None)
    assert files.save_artifact("model.pt", b"data").size == 4 and failures == []
    assert [r.name for r in files.store.list(files.job_id)] == ["model.pt"]


def test_an_outage_past_the_deadline_is_a_job_failure(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    files = job_files(engine, retry_s=0)
    flaky_put(files, monkeypatch, [outage()])
    with pytest.raises(ArtifactNotKept, match="^model.pt: OperationalError: .*connection refused"):
        files.save_artifact("model.pt", b"data")


def test_a_full_directory_is_not_retried(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    files = job_files(engine, retry_s=30)
    full = ArtifactStoreError(f"the artifact directory is full ({errno.errorcode[errno.ENOSPC]})")
    failures: list[Exception] = [full]
    flaky_put(files, monkeypatch, failures)
    with pytest.raises(ArtifactStoreError) as caught:
        files.save_artifact("model.pt", b"data")
    assert caught.value is full

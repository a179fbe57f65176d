"""The worker's side of checkpoints and ``--init-from``, through ``execute_job`` against real ledgers: a
checkpoint of another spec is not handed over, the checkpoint goes when the job ends, and a job starts from
another's verified model.pt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from mlpq.db import jobs
from mlpq.db.artifacts import ArtifactStore
from mlpq.db.engine import make_engine
from mlpq.db.records import JobRecord
from mlpq.db.status import JobStatus
from mlpq.devices import Device
from mlpq.worker.execute import execute_job
from mlpq.worker.lease import LeaseKeeper

SPEC = {"dataset": "mnist-sample", "epochs": 2, "seed": 3}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlpq.models import mnist_data

    root = tmp_path_factory.mktemp("data")
    mnist_data.load("mnist-sample", root)
    return root


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def add(engine: Engine, params: dict[str, Any]) -> str:
    with engine.begin() as connection:
        return jobs.create_job(connection, "mnist", params, "cpu", timeout_s=600).id


def run(engine: Engine, job_id: str, data_dir: Path) -> JobRecord:
    execute_job(engine, job_id, device=Device("cpu"), worker_host="test-host", data_dir=data_dir,
                leases=LeaseKeeper(engine, 0.2))
    with engine.connect() as connection:
        return jobs.find_job(connection, job_id)


def store(engine: Engine) -> ArtifactStore:
    return ArtifactStore(engine, None, 1 << 26)


def test_a_checkpoint_of_another_spec_is_not_resumed_from(engine: Engine, data_dir: Path) -> None:
    job_id = add(engine, SPEC)
    store(engine).put(job_id, 0, "checkpoint", b"state", role="checkpoint", meta={"spec": "0" * 64, "step": 1})
    job = run(engine, job_id, data_dir)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.result["notice"] == ("the checkpoint could not be used (it is from another spec); the attempt "
                                    "started from the beginning")
    with engine.connect() as connection:
        assert [m.step for m in jobs.latest_metrics(connection, job)] == [1, 2]
        assert jobs.attempts_of(connection, job_id)[0].resumed_at_step is None
    assert store(engine).find(job_id, "checkpoint", role="checkpoint") is None  # removed when the job ended


def test_the_checkpoint_goes_when_the_job_fails(engine: Engine, data_dir: Path) -> None:
    job_id = add(engine, {**SPEC, "init_from": "f" * 32, "init_sha256": "0" * 64})  # no such job: fails
    store(engine).put(job_id, 0, "checkpoint", b"state", role="checkpoint", meta={"spec": "0" * 64, "step": 1})
    job = run(engine, job_id, data_dir)
    assert job.status is JobStatus.FAILED and job.error == f"init-from: job {'f' * 32} has no model.pt (deleted?)"
    assert store(engine).find(job_id, "checkpoint", role="checkpoint") is None


def test_a_job_starts_from_another_jobs_verified_model(engine: Engine, data_dir: Path) -> None:
    source = run(engine, add(engine, SPEC), data_dir)
    digest = source.result["model_sha256"]
    assert store(engine).find(source.id, "model.pt").sha256 == digest
    started = run(engine, add(engine, {**SPEC, "epochs": 1, "init_from": source.id, "init_sha256": digest}),
                  data_dir)
    fresh = run(engine, add(engine, {**SPEC, "epochs": 1}), data_dir)
    assert started.status is JobStatus.SUCCEEDED, started.error
    assert started.result["test_accuracy"] > fresh.result["test_accuracy"]  # 2 + 1 epochs beat 1
    forged = run(engine, add(engine, {**SPEC, "init_from": source.id, "init_sha256": "0" * 64}), data_dir)
    assert forged.status is JobStatus.FAILED
    assert forged.error == (f"init-from: model.pt of job {source.id} is not the one submitted: SHA-256 {digest}, "
                            f"expected {'0' * 64}")

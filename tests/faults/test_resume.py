"""Checkpoints that resume, proven with a real worker: an MNIST job whose pool process is killed after epoch k
ends on its second attempt, which trains only epochs k+1…E, with the very ``model.pt`` of an uninterrupted run;
a checkpoint that does not verify is never trained on.

The job is held after epoch k's checkpoint by the test-only ``held-mnist`` kind (``mnist``'s training with a
gate), so the kill lands there however fast the machine is.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mlpq.db.artifacts import ArtifactStore
from mlpq.db.engine import make_engine
from mlpq.db.schema import ARTIFACT_CHUNKS, ARTIFACTS, METRICS
from mlpq.db.status import JobStatus
from mlpq.api_cli.output import show_text
from tests.faults import helpers
from tests.jobkinds import fault_kind
from tests.jobkinds.fault_kind import Gate

pytestmark = pytest.mark.integration

EPOCHS = 3
SPEC = {"dataset": "mnist-sample", "epochs": EPOCHS, "seed": 11, "lr": 0.05, "momentum": 0.5}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose cache already holds the sample, for every worker here (decoding takes seconds)."""
    from mlpq.models import mnist_data

    root = tmp_path_factory.mktemp("data")
    mnist_data.load("mnist-sample", root)
    return root


@pytest.fixture
def fault_env(fault_env: dict[str, str], data_dir: Path) -> dict[str, str]:
    """Workers that also know the test-only kinds (``held-mnist``), with one torch thread each (as under
    scripts/test.sh: on a busy machine OpenMP's spinning threads slow training many times)."""
    return {**fault_kind.worker_env(fault_env), "OMP_NUM_THREADS": "1", "MLPQ_DATA_DIR": str(data_dir)}


def held(gate: Gate, k: int) -> dict[str, object]:
    return {**SPEC, "hold_after": k, "until": str(gate.release), "running": str(gate.running)}


def steps_by_attempt(env: dict[str, str], job_id: str) -> dict[int, list[int]]:
    engine = make_engine(env["MLPQ_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(METRICS.c.attempt, METRICS.c.step)
                                      .where(METRICS.c.job_id == job_id).order_by(METRICS.c.attempt, METRICS.c.step))
            found: dict[int, list[int]] = {}
            for attempt, step in rows:
                found.setdefault(attempt, []).append(step)
            return found
    finally:
        engine.dispose()


def kept(env: dict[str, str], job_id: str, name: str, role: str = "artifact") -> str | None:
    """The SHA-256 of the job's stored file ``name``, or ``None``."""
    engine = make_engine(env["MLPQ_DATABASE_URL"])
    try:
        record = ArtifactStore(engine, None, 1 << 30).find(job_id, name, role=role)
        return record.sha256 if record else None
    finally:
        engine.dispose()


UNINTERRUPTED: dict[str, str] = {}
"""The SHA-256 of ``SPEC``'s model.pt from an ``mnist`` job that ran through, once per test process."""


def uninterrupted(env: dict[str, str]) -> str:
    if "sha256" not in UNINTERRUPTED:
        job = helpers.finished(env, helpers.submit(env, "mnist", **SPEC))
        assert job.status is JobStatus.SUCCEEDED and job.attempts == 1
        UNINTERRUPTED["sha256"] = job.result["model_sha256"]
    return UNINTERRUPTED["sha256"]


@pytest.mark.parametrize("k", [1, EPOCHS - 1])
def test_a_job_killed_after_epoch_k_resumes_at_k_plus_1_with_the_same_weights(
        fault_env: dict[str, str], gate: Gate, tmp_path: Path, k: int) -> None:
    worker = helpers.new_worker(fault_env, tmp_path / "worker.log", "--hostname", "host-a")
    try:
        expected = uninterrupted(fault_env)
        job_id = helpers.submit(fault_env, "held-mnist", **held(gate, k))
        pid = helpers.eventually(gate.pid, 60, f"job {job_id} to hold after epoch {k}")
        assert steps_by_attempt(fault_env, job_id) == {1: list(range(1, k + 1))}  # epoch k's metrics are in
        assert pid in helpers.pool_children(worker)
        os.kill(pid, signal.SIGKILL)
        job = helpers.finished(fault_env, job_id)
    finally:
        worker.stop()
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 2, job.error
    assert steps_by_attempt(fault_env, job_id) == {1: list(range(1, k + 1)), 2: list(range(k + 1, EPOCHS + 1))}
    assert job.result["model_sha256"] == expected == kept(fault_env, job_id, "model.pt")
    assert job.result["notice"] is None
    assert kept(fault_env, job_id, "checkpoint", role="checkpoint") is None  # removed when the job ended
    view = helpers.client(fault_env).get(job_id)
    assert [m.step for m in view.metrics] == list(range(1, EPOCHS + 1))  # one curve
    ran = f"epoch {k}" if k == 1 else f"epochs 1–{k}"
    assert (f"attempts  attempt 1: {ran} on host-a (worker lost); "
            f"attempt 2: resumed at epoch {k + 1} on host-a (succeeded)") in show_text(view)


def test_a_corrupted_checkpoint_is_never_trained_on(fault_env: dict[str, str], gate: Gate, tmp_path: Path) -> None:
    first = helpers.new_worker(fault_env, tmp_path / "first.log", "--hostname", "host-a")
    try:
        expected = uninterrupted(fault_env)
        job_id = helpers.submit(fault_env, "held-mnist", **held(gate, 1))
        helpers.eventually(gate.pid, 60, f"job {job_id} to hold after epoch 1")
    finally:
        helpers.kill_worker(first)
    engine = make_engine(fault_env["MLPQ_DATABASE_URL"])
    try:
        with engine.begin() as connection:  # flip the checkpoint's bytes, as a failing disk would
            [artifact_id] = connection.scalars(select(ARTIFACTS.c.id).where(
                ARTIFACTS.c.job_id == job_id, ARTIFACTS.c.role == "checkpoint", ARTIFACTS.c.complete))
            connection.execute(update(ARTIFACT_CHUNKS).where(ARTIFACT_CHUNKS.c.artifact_id == artifact_id,
                                                             ARTIFACT_CHUNKS.c.seq == 0)
                               .values(data=b"\0" * 4096))
    finally:
        engine.dispose()
    second = helpers.new_worker(fault_env, tmp_path / "second.log", "--hostname", "host-b")
    try:
        job = helpers.finished(fault_env, job_id)
    finally:
        second.stop()
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 2, job.error
    assert steps_by_attempt(fault_env, job_id)[2] == list(range(1, EPOCHS + 1))  # from the beginning
    assert job.result["model_sha256"] == expected
    assert job.result["notice"].startswith("the checkpoint could not be used (artifact corrupt: ")
    assert "attempt 1: epoch 1 on host-a (worker lost); attempt 2: epochs 1–3 on host-b (succeeded)" in \
        show_text(helpers.client(fault_env).get(job_id))

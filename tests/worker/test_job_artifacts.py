"""A real worker runs a job that keeps an artifact; the real ``mlpq`` lists, downloads (verified) and deletes it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlpq.db.status import JobStatus
from tests.faults.helpers import finished, submit
from tests.jobkinds import fault_kind
from tests.services import WorkerProcess, run_mlpq, start_worker


@pytest.fixture
def env(service_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    extra = {}
    if request.node.callspec.params["store"] == "directory":
        (tmp_path / "shared").mkdir()
        extra = {"MLPQ_ARTIFACT_DIR": str(tmp_path / "shared")}
    with fault_kind.visible_here():  # so this process can submit it
        yield fault_kind.worker_env({**service_env, **extra, "MLPQ_ARTIFACT_MAX_BYTES": "100000"})


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    process = start_worker(env, tmp_path / "worker.log", "--device", "cpu", "--concurrency", "1")
    yield process
    process.stop()


@pytest.mark.integration
@pytest.mark.parametrize(("database_url", "store"), [("sqlite", "ledger"), ("postgresql", "directory")],
                         indirect=["database_url"])
def test_a_kept_artifact_is_listed_downloaded_verified_and_deleted(env: dict[str, str], worker: WorkerProcess,
                                                                    tmp_path: Path, store: str) -> None:
    data = b"trained weights " * 1000
    job = finished(env, submit(env, "fault", action="artifact", name="model.pt", message="trained weights ",
                               repeat=1000))
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.result["sha256"] == hashlib.sha256(data).hexdigest() and job.result["size"] == len(data)

    listed = run_mlpq("artifacts", job.id[:8], "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["size"], row["sha256"], row["attempt"], row["store"]) == (
        "model.pt", len(data), job.result["sha256"], 1, store)

    target = tmp_path / "model.pt"
    downloaded = run_mlpq("download", job.id, "-o", str(target), env=env)
    assert downloaded.returncode == 0, downloaded.stderr
    assert target.read_bytes() == data

    too_large = finished(env, submit(env, "fault", action="artifact", name="big.bin", message="x", repeat=100_001))
    assert (too_large.status, too_large.error) == (JobStatus.FAILED,
                                                   "artifact too large: big.bin is over 100000 bytes")

    deleted = run_mlpq("delete", job.id, too_large.id, env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.splitlines() == [f"deleted {job.id} (fault, succeeded)",
                                           f"deleted {too_large.id} (fault, failed)"]
    gone = run_mlpq("artifacts", job.id, env=env)
    assert gone.returncode == 1 and gone.stderr == f"Error: no job {job.id}\n"
    if store == "directory":
        assert [p for p in (tmp_path / "shared" / "sha256").rglob("*") if p.is_file() and p.name != ".lock"] == []

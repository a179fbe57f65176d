"""``mlpq artifacts``, ``download`` and ``delete`` on SQLite and PostgreSQL, in the ledger and in a directory."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, func, select, update

from mlpq.api_cli.api import Client
from mlpq.api_cli.cli import cli
from mlpq.config import Settings
from mlpq.db import jobs
from mlpq.db.artifacts import CHUNK_BYTES, ArtifactCorrupt, ArtifactStore
from mlpq.db.engine import make_engine
from mlpq.db.schema import ARTIFACT_CHUNKS, ARTIFACTS, JOBS, METRICS
from mlpq.db.status import JobStatus
from tests.api_cli.ledger_rows import add_job

MODEL = os.urandom(CHUNK_BYTES + 1000)  # two chunks in the ledger


@pytest.fixture(params=["ledger", "directory"])
def store(request: pytest.FixtureRequest, database_url: str, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[ArtifactStore]:
    monkeypatch.setenv("MLPQ_DATABASE_URL", database_url)
    directory = None
    if request.param == "directory":
        directory = tmp_path / "shared"
        directory.mkdir()
        monkeypatch.setenv("MLPQ_ARTIFACT_DIR", str(directory))
    monkeypatch.chdir(tmp_path)
    engine = make_engine(database_url)
    yield ArtifactStore(engine, directory, 1 << 26)
    engine.dispose()


def mlpq(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def finished_job(store: ArtifactStore, *names: str, status: JobStatus = JobStatus.SUCCEEDED) -> str:
    job_id = add_job("himmelblau", {"steps": 10}, status=status, metrics=[(0, {"f": 1.0})])
    for name in names:
        store.put(job_id, 1, name, MODEL if name == "model.pt" else name.encode())
    return job_id


def count(engine: Engine, table: object) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table))  # type: ignore[arg-type]


def test_artifacts_lists_name_size_sha256_and_attempt(store: ArtifactStore) -> None:
    job_id = finished_job(store, "model.pt", "notes.txt")
    listed = mlpq("artifacts", job_id[:6], "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["name"], r["size"], r["sha256"], r["attempt"]) for r in rows] == [
        ("model.pt", len(MODEL), hashlib.sha256(MODEL).hexdigest(), 1),
        ("notes.txt", 9, hashlib.sha256(b"notes.txt").hexdigest(), 1)]
    assert {r["store"] for r in rows} == {"ledger" if store.directory is None else "directory"}
    table = mlpq("artifacts", job_id).output.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "SHA256", "ATTEMPT"]
    assert table[1].split() == ["model.pt", "1.0", "MiB", hashlib.sha256(MODEL).hexdigest(), "1"]
    assert table[2].split() == ["notes.txt", "9", "B", hashlib.sha256(b"notes.txt").hexdigest(), "1"]


def test_a_job_without_artifacts_says_so() -> None:
    job_id = add_job("himmelblau", {"steps": 10})
    result = mlpq("artifacts", job_id)
    assert result.exit_code == 0 and result.stderr == f"job {job_id} kept no artifacts\n" and result.stdout == ""


def test_download_writes_the_verified_bytes(store: ArtifactStore, tmp_path: Path) -> None:
    job_id = finished_job(store, "model.pt")
    done = mlpq("download", job_id[:8])  # its only artifact, into the current directory
    assert done.exit_code == 0, done.output
    assert (tmp_path / "model.pt").read_bytes() == MODEL
    assert done.stderr == f"model.pt (1.0 MiB, sha256 {hashlib.sha256(MODEL).hexdigest()})\n"
    again = mlpq("download", job_id, "model.pt")
    assert again.exit_code == 2 and again.stderr == "Error: 'model.pt' exists: give --force to overwrite it, or another -o\n"
    (tmp_path / "model.pt").write_bytes(b"old")
    assert mlpq("download", job_id, "model.pt", "--force").exit_code == 0
    assert (tmp_path / "model.pt").read_bytes() == MODEL
    (tmp_path / "into").mkdir()
    assert mlpq("download", job_id, "-o", "into").exit_code == 0
    assert (tmp_path / "into" / "model.pt").read_bytes() == MODEL
    assert sorted(p.name for p in (tmp_path / "into").iterdir()) == ["model.pt"]


def test_download_to_standard_output(store: ArtifactStore) -> None:
    job_id = finished_job(store, "model.pt", "notes.txt")
    done = mlpq("download", job_id, "model.pt", "-o", "-")
    assert done.exit_code == 0 and done.stdout_bytes == MODEL


def corrupt(store: ArtifactStore, job_id: str) -> None:
    record = store.find(job_id, "model.pt")
    assert record is not None
    if store.directory is None:
        with store.engine.begin() as connection:
            connection.execute(update(ARTIFACT_CHUNKS).where(ARTIFACT_CHUNKS.c.seq == 1).values(data=b"x" * 1000))
    else:
        store.directory.joinpath("sha256", record.sha256[:2], record.sha256).write_bytes(b"evil")


def test_corrupt_bytes_are_exit_1_and_nothing_is_written(store: ArtifactStore, tmp_path: Path) -> None:
    job_id = finished_job(store, "model.pt")
    corrupt(store, job_id)
    before = sorted(tmp_path.iterdir())
    done = mlpq("download", job_id, "-o", "out.pt")
    assert done.exit_code == 1 and done.stderr.startswith(f"Error: artifact corrupt: model.pt of job {job_id}: read")
    assert len(done.stderr.splitlines()) == 1 and sorted(tmp_path.iterdir()) == before
    to_stdout = mlpq("download", job_id, "-o", "-")
    assert to_stdout.exit_code == 1 and to_stdout.stdout_bytes == b""
    with pytest.raises(ArtifactCorrupt):
        Client(Settings.from_env()).download(job_id, path=tmp_path / "api.pt")
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize(("args", "code", "message"), [
    (["ffff"], 1, "Error: no job ffff"),
    (["{job}", "missing.pt"], 1, "Error: job {job} has no artifact 'missing.pt'"),
    (["{job}"], 2, "Error: job {job} has 2 artifacts: name one (model.pt, notes.txt)"),
    (["{job}", "../model.pt"], 2, "Error: bad artifact name: '../model.pt': no '/', '\\', '..' or NUL in an "
                                  "artifact name"),
    (["{job}", "model.pt", "-o", "/nonexistent/model.pt"], 2,
     "Error: cannot write '/nonexistent/model.pt': no directory '/nonexistent'"),
    (["{job}", "model.pt", "-o", "/proc/model.pt"], 2, "Error: cannot write '/proc/model.pt': "),
])
def test_bad_downloads_are_one_line(store: ArtifactStore, args: list[str], code: int, message: str) -> None:
    job_id = finished_job(store, "model.pt", "notes.txt")
    done = mlpq("download", *[arg.format(job=job_id) for arg in args])
    assert done.exit_code == code and len(done.stderr.splitlines()) == 1, done.output
    assert done.stderr.startswith(message.format(job=job_id)), done.stderr


def test_a_job_without_artifacts_has_nothing_to_download() -> None:
    job_id = add_job("himmelblau", {"steps": 10})
    done = mlpq("download", job_id)
    assert done.exit_code == 1 and done.stderr == f"Error: job {job_id} has no artifacts\n"


def test_delete_removes_finished_jobs_with_all_they_keep(store: ArtifactStore) -> None:
    first = finished_job(store, "model.pt")
    second = finished_job(store, "model.pt", "notes.txt", status=JobStatus.FAILED)  # the same model file
    kept = finished_job(store, "other.txt")
    done = mlpq("delete", first[:6], second)
    assert done.exit_code == 0, done.output
    assert done.stdout == f"deleted {first} (himmelblau, succeeded)\ndeleted {second} (himmelblau, failed)\n"
    with store.engine.connect() as connection:
        assert list(connection.scalars(select(JOBS.c.id))) == [kept]
        assert set(connection.scalars(select(METRICS.c.job_id))) == {kept}
        assert set(connection.scalars(select(ARTIFACTS.c.job_id))) == {kept}
    assert count(store.engine, ARTIFACT_CHUNKS) == (1 if store.directory is None else 0)
    if store.directory is not None:  # only the kept job's file is left
        files = [p.name for p in store.directory.joinpath("sha256").rglob("*") if p.is_file() and p.name != ".lock"]
        assert files == [hashlib.sha256(b"other.txt").hexdigest()]
    assert mlpq("artifacts", first).exit_code == 1


def test_delete_refuses_an_unfinished_job_and_deletes_nothing(store: ArtifactStore) -> None:
    done_job = finished_job(store, "model.pt")
    running = add_job("himmelblau", {"steps": 10}, status=JobStatus.RUNNING)
    queued = add_job("himmelblau", {"steps": 10}, status=JobStatus.QUEUED)
    refused = mlpq("delete", done_job, running, queued)
    assert refused.exit_code == 1
    assert refused.stderr == (f"Error: job {running} is running (and 1 more): cancel it or let it end first "
                              f"(nothing deleted)\n")
    assert count(store.engine, JOBS) == 3 and store.find(done_job, "model.pt") is not None
    missing = mlpq("delete", done_job, "ffff")
    assert missing.exit_code == 1 and missing.stderr == "Error: no job ffff\n" and count(store.engine, JOBS) == 3


def test_delete_a_sweep(store: ArtifactStore) -> None:
    sweep = "ab" * 16
    members = [add_job("himmelblau", {"steps": 10}, sweep_id=sweep) for _ in range(2)]
    other = add_job("himmelblau", {"steps": 10})
    done = mlpq("delete", "--sweep", sweep[:6])
    assert done.exit_code == 0 and sorted(line.split()[1] for line in done.stdout.splitlines()) == sorted(members)
    assert count(store.engine, JOBS) == 1 and Client(Settings.from_env()).get(other)
    assert mlpq("delete", "--sweep", sweep).stderr == f"Error: no jobs in a sweep {sweep}\n"
    usage = mlpq("delete")
    assert usage.exit_code == 2 and "name the jobs to delete, or a sweep with --sweep ID" in usage.stderr


def test_deleting_directory_artifacts_needs_the_directory(database_url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPQ_DATABASE_URL", database_url)
    engine = make_engine(database_url)
    job_id = add_job("himmelblau", {"steps": 10})
    ArtifactStore(engine, tmp_path, 1000).put(job_id, 1, "model.pt", b"bytes")
    done = mlpq("delete", job_id)
    assert done.exit_code == 2 and "set MLPQ_ARTIFACT_DIR" in done.stderr and "(nothing deleted)" in done.stderr
    with engine.connect() as connection:
        assert jobs.job_status(connection, job_id) is JobStatus.SUCCEEDED
    engine.dispose()


def test_client_methods(store: ArtifactStore, tmp_path: Path) -> None:
    job_id = finished_job(store, "model.pt")
    api = Client(Settings.from_env())
    [record] = api.artifacts(job_id[:5])
    assert api.artifact(job_id, "model.pt") == record
    got, path = api.download(job_id, path=tmp_path / "m.pt")
    assert got == record and path == tmp_path / "m.pt" and path.read_bytes() == MODEL
    assert [job.id for job in api.delete([job_id])] == [job_id] and api.list() == []

"""The artifact store on SQLite and PostgreSQL, in the ledger and in a directory."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from mlpq.db import jobs
from mlpq.db.artifacts import (CHUNK_BYTES, ArtifactCorrupt, ArtifactNameError, ArtifactStore, ArtifactStoreError,
                               ArtifactTooLarge, check_name)
from mlpq.db.engine import make_engine
from mlpq.db.schema import ARTIFACT_CHUNKS, ARTIFACTS


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["ledger", "directory"])
def store(request: pytest.FixtureRequest, engine: Engine, tmp_path: Path) -> ArtifactStore:
    directory = None
    if request.param == "directory":
        directory = tmp_path / "artifacts"
        directory.mkdir()
    return ArtifactStore(engine, directory, 8 * CHUNK_BYTES)


def new_job(engine: Engine) -> str:
    with engine.begin() as connection:
        return jobs.create_job(connection, "himmelblau", {"steps": 10}, "cpu", timeout_s=60).id


def all_rows(engine: Engine) -> list[tuple[str, bool]]:
    with engine.connect() as connection:
        return [(row.name, row.complete) for row in connection.execute(select(ARTIFACTS.c.name, ARTIFACTS.c.complete))]


def chunk_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(ARTIFACT_CHUNKS))


def files_in(store: ArtifactStore) -> list[Path]:
    if store.directory is None:
        return []
    return sorted(p for p in (store.directory / "sha256").rglob("*") if p.is_file() and p.name != ".lock")


def test_a_multi_chunk_artifact_comes_back_whole_and_verified(store: ArtifactStore, tmp_path: Path) -> None:
    job_id = new_job(store.engine)
    data = os.urandom(2 * CHUNK_BYTES + 123)
    source = tmp_path / "model.pt"
    source.write_bytes(data)
    record = store.put(job_id, 1, "model.pt", source, meta={"epochs": 3})
    assert (record.name, record.size, record.sha256, record.attempt) == (
        "model.pt", len(data), hashlib.sha256(data).hexdigest(), 1)
    assert record.store == ("ledger" if store.directory is None else "directory")
    assert store.find(job_id, "model.pt") == record and record.meta == {"epochs": 3}
    assert store.list(job_id) == [record]
    chunks = list(store.chunks(record))
    assert [len(c) for c in chunks] == [CHUNK_BYTES, CHUNK_BYTES, 123] and b"".join(chunks) == data
    store.copy_to(record, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == data
    assert chunk_rows(store.engine) == (3 if store.directory is None else 0)
    if store.directory is not None:
        sha = record.sha256
        assert files_in(store) == [store.directory / "sha256" / sha[:2] / sha]


def test_bytes_and_streams_are_sources_and_roles_are_apart(store: ArtifactStore) -> None:
    job_id = new_job(store.engine)
    store.put(job_id, 1, "a", b"from bytes")
    store.put(job_id, 1, "b", io.BytesIO(b"from a stream"))
    store.put(job_id, 1, "a", b"state", role="checkpoint")
    assert [(r.name, r.size) for r in store.list(job_id)] == [("a", 10), ("b", 13)]
    assert [r.name for r in store.list(job_id, role="checkpoint")] == ["a"]
    assert store.find(job_id, "missing") is None
    assert store.find(new_job(store.engine), "a") is None


def test_a_replacement_takes_over_only_once_complete(store: ArtifactStore) -> None:
    job_id = new_job(store.engine)
    first = store.put(job_id, 1, "model.pt", b"first")
    with pytest.raises(ArtifactTooLarge, match=r"^model.pt is over 8388608 bytes$"):
        store.put(job_id, 2, "model.pt", io.BytesIO(b"x" * (8 * CHUNK_BYTES + 1)))
    assert store.list(job_id) == [first] and all_rows(store.engine) == [("model.pt", True)]
    assert b"".join(store.chunks(first)) == b"first"
    second = store.put(job_id, 2, "model.pt", b"second")
    assert store.list(job_id) == [second] and second.attempt == 2
    assert b"".join(store.chunks(second)) == b"second"
    assert chunk_rows(store.engine) == (1 if store.directory is None else 0)
    assert len(files_in(store)) == (0 if store.directory is None else 1)  # the first file went with its row


def test_too_large_is_the_job_failure_reason_and_leaves_nothing(store: ArtifactStore) -> None:
    job_id = new_job(store.engine)
    with pytest.raises(ArtifactTooLarge) as caught:
        store.put(job_id, 1, "big", b"y" * (8 * CHUNK_BYTES + 1))
    assert caught.value.report() == "artifact too large: big is over 8388608 bytes"
    assert all_rows(store.engine) == [] and chunk_rows(store.engine) == 0 and files_in(store) == []


def test_exactly_the_limit_is_kept(store: ArtifactStore) -> None:
    record = store.put(new_job(store.engine), 1, "edge", b"z" * (8 * CHUNK_BYTES))
    assert record.size == 8 * CHUNK_BYTES


def test_corrupt_bytes_are_detected_and_nothing_is_written(store: ArtifactStore, tmp_path: Path) -> None:
    job_id = new_job(store.engine)
    record = store.put(job_id, 1, "model.pt", b"good bytes")
    if store.directory is None:
        with store.engine.begin() as connection:
            connection.execute(update(ARTIFACT_CHUNKS).values(data=b"evil bytes"))
    else:
        path = files_in(store)[0]
        path.write_bytes(b"evil bytes")
    target = tmp_path / "out" / "model.pt"
    target.parent.mkdir()
    with pytest.raises(ArtifactCorrupt) as caught:
        store.copy_to(record, target)
    assert caught.value.report().startswith("artifact corrupt: model.pt of job ")
    assert list(target.parent.iterdir()) == []


def test_a_missing_directory_file_is_corrupt(engine: Engine, tmp_path: Path) -> None:
    store = ArtifactStore(engine, tmp_path, CHUNK_BYTES)
    record = store.put(new_job(engine), 1, "model.pt", b"bytes")
    files_in(store)[0].unlink()
    with pytest.raises(ArtifactCorrupt, match="is missing"):
        store.copy_to(record, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


@pytest.mark.parametrize("name", ["", "a/b", "..", "a..b", "x\0y", "/etc/passwd", "é" * 128, "tab\there"])
def test_bad_names_are_refused(name: str, store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNameError):
        store.put(new_job(store.engine), 1, name, b"data")
    assert all_rows(store.engine) == []


def test_names_up_to_255_bytes_are_fine() -> None:
    assert check_name("é" * 127 + "a") and check_name("model.pt") and check_name(".hidden")


def test_identical_files_are_shared_and_removed_with_the_last_row(engine: Engine, tmp_path: Path) -> None:
    store = ArtifactStore(engine, tmp_path, CHUNK_BYTES)
    first, second = new_job(engine), new_job(engine)
    store.put(first, 1, "model.pt", b"same bytes")
    store.put(second, 1, "copy.pt", b"same bytes")
    assert len(files_in(store)) == 1
    assert store.remove(first) == 1
    assert len(files_in(store)) == 1 and [r.name for r in store.list(second)] == ["copy.pt"]
    store.remove(second)
    assert files_in(store) == [] and all_rows(engine) == []


def test_remove_by_role_keeps_the_others(store: ArtifactStore) -> None:
    job_id = new_job(store.engine)
    store.put(job_id, 1, "model.pt", b"model")
    store.put(job_id, 1, "state", b"state", role="checkpoint")
    store.remove(job_id, role="checkpoint")
    assert store.list(job_id, role="checkpoint") == [] and [r.name for r in store.list(job_id)] == ["model.pt"]


def test_a_missing_directory_is_a_clear_error(engine: Engine, tmp_path: Path) -> None:
    store = ArtifactStore(engine, tmp_path / "not-mounted", CHUNK_BYTES)
    with pytest.raises(ArtifactStoreError, match="does not exist"):
        store.put(new_job(engine), 1, "model.pt", b"data")
    assert all_rows(engine) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_a_read_only_directory_is_a_clear_error(engine: Engine, tmp_path: Path) -> None:
    tmp_path.joinpath("sha256").mkdir()
    tmp_path.joinpath("sha256").chmod(0o555)
    store = ArtifactStore(engine, tmp_path, CHUNK_BYTES)
    try:
        with pytest.raises(ArtifactStoreError, match="is not writable"):
            store.put(new_job(engine), 1, "model.pt", b"data")
    finally:
        tmp_path.joinpath("sha256").chmod(0o755)
    assert all_rows(engine) == [] and files_in(store) == []


def test_a_read_only_mount_is_a_clear_error(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlpq.db import artifacts

    def read_only(path: object, mode: str = "r", *args: object) -> object:
        if "x" in mode or "w" in mode:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return open(path, mode, *args)  # type: ignore[call-overload]

    store = ArtifactStore(engine, tmp_path, CHUNK_BYTES)
    monkeypatch.setattr(artifacts, "open", read_only, raising=False)
    with pytest.raises(ArtifactStoreError, match=r"is not writable \(Read-only file system\)"):
        store.put(new_job(engine), 1, "model.pt", b"data")
    assert all_rows(engine) == []


def test_a_full_directory_is_a_clear_error_and_keeps_the_earlier_file(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ArtifactStore(engine, tmp_path, 4 * CHUNK_BYTES)
    job_id = new_job(engine)
    first = store.put(job_id, 1, "model.pt", b"first")
    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ArtifactStoreError, match=r"is full \(No space left on device\)"):
        store.put(job_id, 2, "model.pt", io.BytesIO(b"x" * (2 * CHUNK_BYTES)))
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert store.list(job_id) == [first] and all_rows(engine) == [("model.pt", True)]
    assert [p.name for p in files_in(store)] == [first.sha256]  # no partial file left behind
    assert b"".join(store.verified_chunks(first)) == b"first"


def test_a_database_failure_at_the_end_lists_nothing_and_leaves_no_file(
        store: ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = new_job(store.engine)
    from mlpq.db import artifacts

    def broken(*args: object) -> list[tuple[str, str]]:
        raise RuntimeError("database gone")

    monkeypatch.setattr(artifacts, "_delete_rows", broken)
    with pytest.raises(RuntimeError):
        store.put(job_id, 1, "model.pt", b"x" * (CHUNK_BYTES + 1))
    monkeypatch.undo()
    assert store.list(job_id) == [] and files_in(store) == []
    assert all(not complete for _, complete in all_rows(store.engine))


def test_an_unfinished_ledger_row_is_never_listed_and_goes_with_its_job(engine: Engine) -> None:
    store = ArtifactStore(engine, None, CHUNK_BYTES)
    job_id = new_job(engine)
    source = io.BytesIO(b"a" * (CHUNK_BYTES + 5))
    chunks_seen = []

    class Dies(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            if chunks_seen:
                raise KeyboardInterrupt  # the process is stopped mid-stream
            data = source.read(len(buffer))
            chunks_seen.append(len(data))
            buffer[:len(data)] = data
            return len(data)

    with pytest.raises(KeyboardInterrupt):
        store.put(job_id, 1, "model.pt", io.BufferedReader(Dies(), CHUNK_BYTES))
    assert store.list(job_id) == [] and all_rows(engine) == []  # dropped on the way out

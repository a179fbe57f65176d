"""The files jobs keep: in the ledger (1 MiB chunk rows) or in a shared directory, content-addressed.

Neither store ever lists a half-written file. The ledger store writes its chunks under a placeholder name
(one with a ``/``, which no artifact may have) and, in one last transaction, drops the earlier row of the
same (job, role, name) and gives the new one its name, size and SHA-256, marked complete. The directory store
writes ``<dir>/sha256/<2 hex>/<hex>`` through a temporary file in the same directory (fsync'd, renamed), and
then writes the row complete in one transaction. A directory file is removed once no row refers to its
SHA-256 (identical runs make identical files); a lock file keeps that count and a writer's rename apart.

Sources are streamed a chunk at a time: no artifact is held whole in memory.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update

from mlpq.db.schema import ARTIFACT_CHUNKS, ARTIFACTS
from mlpq.errors import MlpqError, NotFoundError, UsageError
from mlpq.models.context import JobError
from mlpq.redact import shown

CHUNK_BYTES = 1 << 20
"""The bytes of one ``artifact_chunks`` row, and of each read and write of a stream."""
MAX_NAME_BYTES = 255
ROLES = ("artifact", "checkpoint")
PLACEHOLDER = "/partial/"
"""The name prefix of a ledger row whose chunks are still being written (a ``/`` no artifact name has)."""
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.ESTALE, errno.ETIMEDOUT, errno.ENOTCONN, errno.EHOSTDOWN,
                              errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNREFUSED, errno.EAGAIN})
"""Directory failures of a network filesystem whose server is away: worth retrying."""

ART, CHUNK = ARTIFACTS.c, ARTIFACT_CHUNKS.c
Source = bytes | Path | BinaryIO


class ArtifactError(JobError, MlpqError):
    """A failure of keeping or reading an artifact; shown as ``<reason>: <message>`` by the CLI and a job."""

    reason = "artifact error"

    def report(self) -> str:
        return f"{self.reason}: {self}"


class ArtifactTooLarge(ArtifactError):
    reason = "artifact too large"


class ArtifactCorrupt(ArtifactError):
    """The bytes read back are not those written (SHA-256 or size differ, or the file is gone)."""

    reason = "artifact corrupt"


class ArtifactNameError(ArtifactError, UsageError):
    reason = "bad artifact name"


class ArtifactStoreError(ArtifactError):
    """The artifact directory is missing, read-only, full or otherwise unusable; ``transient``: it may come
    back by itself (an NFS server away), so a writer may retry."""

    reason = "artifact store unavailable"

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class ArtifactNotFound(ArtifactError, NotFoundError):
    """A job has no (such) artifact; the message says so in full."""

    reason = "no artifact"

    def report(self) -> str:
        return str(self)


@dataclass(frozen=True)
class ArtifactRecord:
    """One complete artifact as the ledger lists it (``id``: its row, for reading its bytes)."""

    job_id: str
    attempt: int
    role: str
    name: str
    size: int
    sha256: str
    store: str
    meta: dict[str, Any] | None
    created_at: datetime
    id: int = field(default=0, compare=False, repr=False)

    @classmethod
    def from_row(cls, row: Any) -> ArtifactRecord:
        values = row._mapping
        return cls(values["job_id"], values["attempt"], values["role"], values["name"], values["size"],
                   values["sha256"], values["store"], values["meta"], values["created_at"], values["id"])


def check_name(name: str) -> str:
    """``name`` if it may name an artifact (never a path); raises ``ArtifactNameError``."""
    if not isinstance(name, str) or not name:
        raise ArtifactNameError("an artifact needs a name")
    if "/" in name or "\\" in name or "\0" in name or name in (".", "..") or ".." in name:
        raise ArtifactNameError(f"{shown(name)}: no '/', '\\', '..' or NUL in an artifact name")
    if not name.isprintable():
        raise ArtifactNameError(f"{shown(name)}: no control characters in an artifact name")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise ArtifactNameError(f"{shown(name)}: an artifact name has at most {MAX_NAME_BYTES} bytes (UTF-8)")
    return name


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown artifact role {role!r}")


class ArtifactStore:
    """Artifacts of jobs in ``engine``'s ledger; with ``directory``, their bytes go there instead.

    ``max_bytes``: the largest artifact accepted (checked while streaming).
    """

    def __init__(self, engine: Engine, directory: Path | None, max_bytes: int) -> None:
        self.engine, self.directory, self.max_bytes = engine, directory, max_bytes

    # writing

    def put(self, job_id: str, attempt: int, name: str, source: Source, *, role: str = "artifact",
            meta: dict[str, Any] | None = None) -> ArtifactRecord:
        """Keep ``source`` as job ``job_id``'s artifact ``name``, replacing an earlier one only once complete.

        Raises ``ArtifactNameError``, ``ArtifactTooLarge``, ``ArtifactStoreError`` (directory), or the
        database's error; after any of them nothing new is listed and the earlier artifact stays.
        """
        check_name(name)
        _check_role(role)
        with _opened(source) as stream:
            if self.directory is None:
                return self._put_in_ledger(job_id, attempt, name, stream, role, meta)
            return self._put_in_directory(job_id, attempt, name, stream, role, meta)

    def _put_in_ledger(self, job_id: str, attempt: int, name: str, stream: BinaryIO, role: str,
                       meta: dict[str, Any] | None) -> ArtifactRecord:
        with self.engine.begin() as connection:
            artifact_id = connection.execute(insert(ARTIFACTS).values(
                job_id=job_id, attempt=attempt, role=role, name=PLACEHOLDER + uuid.uuid4().hex, size=0,
                sha256="", store="ledger", complete=False, meta=meta).returning(ART.id)).scalar_one()
        try:
            digest, size, seq = hashlib.sha256(), 0, 0
            for chunk in _read_chunks(stream, name, self.max_bytes):
                digest.update(chunk)
                size += len(chunk)
                with self.engine.begin() as connection:
                    connection.execute(insert(ARTIFACT_CHUNKS).values(artifact_id=artifact_id, seq=seq, data=chunk))
                seq += 1
            with self.engine.begin() as connection:
                dropped = _delete_rows(connection, _same(job_id, role, name))
                row = connection.execute(
                    update(ARTIFACTS).where(ART.id == artifact_id)
                    .values(name=name, size=size, sha256=digest.hexdigest(), complete=True)
                    .returning(*ARTIFACTS.c)).one()
        except BaseException:
            self._discard(artifact_id)
            raise
        self._collect(dropped)
        return ArtifactRecord.from_row(row)

    def _discard(self, artifact_id: int) -> None:
        """Drop an unfinished ledger row and its chunks, if the database lets us (else they stay unlisted)."""
        try:
            with self.engine.begin() as connection:
                _delete_rows(connection, ART.id == artifact_id)
        except Exception:  # the database is away: the row stays incomplete, never listed, removed with its job
            pass

    def _put_in_directory(self, job_id: str, attempt: int, name: str, stream: BinaryIO, role: str,
                          meta: dict[str, Any] | None) -> ArtifactRecord:
        root = self._root()
        with _directory_errors(self.directory):
            partial = root / f".partial-{uuid.uuid4().hex}"
            try:
                digest, size = hashlib.sha256(), 0
                with open(partial, "xb") as out:
                    for chunk in _read_chunks(stream, name, self.max_bytes):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                sha256 = digest.hexdigest()
                target = self._path(sha256)
                target.parent.mkdir(exist_ok=True)
                with self._locked():
                    os.replace(partial, target)
                    _fsync_directory(target.parent)
                    try:
                        with self.engine.begin() as connection:
                            dropped = _delete_rows(connection, _same(job_id, role, name))
                            row = connection.execute(insert(ARTIFACTS).values(
                                job_id=job_id, attempt=attempt, role=role, name=name, size=size, sha256=sha256,
                                store="directory", complete=True, meta=meta).returning(*ARTIFACTS.c)).one()
                    except BaseException:
                        self._unlink_unreferenced({sha256})
                        raise
            finally:
                partial.unlink(missing_ok=True)
        self._collect(dropped)
        return ArtifactRecord.from_row(row)

    def _root(self) -> Path:
        """``<dir>/sha256``, created inside an existing directory; raises ``ArtifactStoreError``."""
        assert self.directory is not None
        if not self.directory.is_dir():
            raise ArtifactStoreError(f"the artifact directory {shown(str(self.directory))} does not exist "
                                     f"(MLPQ_ARTIFACT_DIR; every worker must mount it)")
        root = self.directory / "sha256"
        with _directory_errors(self.directory):
            root.mkdir(exist_ok=True)
        return root

    def _path(self, sha256: str) -> Path:
        assert self.directory is not None
        return self.directory / "sha256" / sha256[:2] / sha256

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the directory's lock (a POSIX lock, which NFS honours) while a file's references change."""
        assert self.directory is not None
        with open(self.directory / "sha256" / ".lock", "a+b") as lock:
            fcntl.lockf(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(lock, fcntl.LOCK_UN)

    # reading

    def find(self, job_id: str, name: str, role: str = "artifact") -> ArtifactRecord | None:
        """Job ``job_id``'s complete artifact ``name``, or ``None``."""
        with self.engine.connect() as connection:
            row = connection.execute(select(ARTIFACTS).where(_same(job_id, role, name), ART.complete)).first()
        return ArtifactRecord.from_row(row) if row is not None else None

    def list(self, job_id: str, role: str = "artifact") -> list[ArtifactRecord]:
        """Job ``job_id``'s complete artifacts of ``role``, by name."""
        with self.engine.connect() as connection:
            return list_artifacts(connection, job_id, role)

    def chunks(self, record: ArtifactRecord) -> Iterator[bytes]:
        """The bytes of ``record``, a chunk at a time (unverified: ``copy_to`` verifies)."""
        if record.store == "directory":
            yield from self._file_chunks(record)
            return
        seq = -1
        while True:
            with self.engine.connect() as connection:
                row = connection.execute(
                    select(CHUNK.seq, CHUNK.data).where(CHUNK.artifact_id == record.id, CHUNK.seq > seq)
                    .order_by(CHUNK.seq).limit(1)).first()
            if row is None:
                return
            seq = row.seq
            yield bytes(row.data)

    def _file_chunks(self, record: ArtifactRecord) -> Iterator[bytes]:
        if self.directory is None:
            raise ArtifactStoreError(f"{record.name} is kept in an artifact directory: set MLPQ_ARTIFACT_DIR")
        path = self._path(record.sha256)
        try:
            stream = open(path, "rb")
        except FileNotFoundError:
            raise ArtifactCorrupt(f"{record.name}: its file {shown(str(path))} is missing") from None
        except OSError as exc:
            raise ArtifactStoreError(f"cannot read {shown(str(path))}: {exc.strerror}") from None
        with stream:
            while chunk := stream.read(CHUNK_BYTES):
                yield chunk

    def verified_chunks(self, record: ArtifactRecord) -> Iterator[bytes]:
        """The chunks of ``record``; raises ``ArtifactCorrupt`` after the last one if they are not its bytes.

        A caller that must not pass on bad bytes writes them somewhere temporary first (``copy_to``).
        """
        digest, size = hashlib.sha256(), 0
        for chunk in self.chunks(record):
            digest.update(chunk)
            size += len(chunk)
            yield chunk
        if size != record.size or digest.hexdigest() != record.sha256:
            raise ArtifactCorrupt(f"{record.name} of job {record.job_id}: read {size} bytes with SHA-256 "
                                  f"{digest.hexdigest()}, kept {record.size} bytes with {record.sha256}")

    def copy_to(self, record: ArtifactRecord, path: Path) -> None:
        """Write ``record``'s bytes to ``path`` through a temporary file beside it, renamed once verified.

        Raises ``ArtifactCorrupt`` (nothing is left at ``path``) or ``OSError`` (``path`` not writable).
        """
        partial = path.with_name(f".mlpq-partial-{uuid.uuid4().hex}")  # whatever the length of path.name
        try:
            with open(partial, "xb") as out:
                for chunk in self.verified_chunks(record):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    # removing

    def remove(self, job_id: str, role: str | None = None) -> int:
        """Drop job ``job_id``'s artifacts (of ``role``, or all, unfinished ones too); returns how many rows."""
        condition = ART.job_id == job_id if role is None else and_(ART.job_id == job_id, ART.role == role)
        with self.engine.begin() as connection:
            dropped = _delete_rows(connection, condition)
        self._collect(dropped)
        return len(dropped)

    def collect(self, sha256s: Iterable[str]) -> None:
        """Remove the directory files of ``sha256s`` that no row refers to any more (after rows were deleted)."""
        self._collect([("directory", sha256) for sha256 in sha256s])

    def _collect(self, dropped: Iterable[tuple[str, str]]) -> None:
        sha256s = {sha256 for store, sha256 in dropped if store == "directory"}
        if not sha256s or self.directory is None or not (self.directory / "sha256").is_dir():
            return
        with _directory_errors(self.directory), self._locked():
            self._unlink_unreferenced(sha256s)

    def _unlink_unreferenced(self, sha256s: set[str]) -> None:
        """Unlink the files of ``sha256s`` that no row refers to; the caller holds the lock."""
        try:
            with self.engine.connect() as connection:
                kept = set(connection.scalars(select(ART.sha256).where(ART.store == "directory",
                                                                       ART.sha256.in_(sha256s))))
        except Exception:  # the database is away: keep the files (an unreferenced file is only wasted space)
            return
        for sha256 in sha256s - kept:
            self._path(sha256).unlink(missing_ok=True)


def list_artifacts(connection: Connection, job_id: str, role: str = "artifact") -> list[ArtifactRecord]:
    """Job ``job_id``'s complete artifacts of ``role``, by name."""
    return [ArtifactRecord.from_row(row) for row in connection.execute(
        select(ARTIFACTS).where(ART.job_id == job_id, ART.role == role, ART.complete).order_by(ART.name))]


def directory_files(connection: Connection, job_ids: Iterable[str]) -> set[str]:
    """The SHA-256s of the directory files the jobs' rows refer to (to ``collect`` once the jobs are gone)."""
    return set(connection.scalars(select(ART.sha256).where(ART.job_id.in_(list(job_ids)),
                                                           ART.store == "directory").distinct()))


def count_artifacts(connection: Connection, job_ids: Iterable[str]) -> int:
    return connection.scalar(select(func.count()).select_from(ARTIFACTS)
                             .where(ART.job_id.in_(list(job_ids)), ART.complete)) or 0


def _same(job_id: str, role: str, name: str) -> Any:
    return and_(ART.job_id == job_id, ART.role == role, ART.name == name)


def _delete_rows(connection: Connection, condition: Any) -> list[tuple[str, str]]:
    """Delete the artifact rows matching ``condition`` (their chunks cascade); returns their (store, sha256)."""
    ids = [row.id for row in connection.execute(select(ART.id).where(condition))]
    if not ids:
        return []
    connection.execute(delete(ARTIFACT_CHUNKS).where(CHUNK.artifact_id.in_(ids)))  # SQLite without FKs too
    return [(row.store, row.sha256) for row in connection.execute(
        delete(ARTIFACTS).where(ART.id.in_(ids)).returning(ART.store, ART.sha256))]


def _read_chunks(stream: BinaryIO, name: str, max_bytes: int) -> Iterator[bytes]:
    """``stream``'s bytes a chunk at a time; raises ``ArtifactTooLarge`` as soon as they pass ``max_bytes``."""
    total = 0
    while chunk := stream.read(CHUNK_BYTES):
        total += len(chunk)
        if total > max_bytes:
            raise ArtifactTooLarge(f"{name} is over {max_bytes} bytes")
        yield chunk


@contextmanager
def _opened(source: Source) -> Iterator[BinaryIO]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(source)
    elif isinstance(source, Path):
        with open(source, "rb") as stream:
            yield stream
    else:
        yield source


@contextmanager
def _directory_errors(directory: Path | None) -> Iterator[None]:
    """Turn the directory's ``OSError`` into an ``ArtifactStoreError`` that says what is wrong."""
    try:
        yield
    except OSError as exc:
        where = shown(str(directory))
        if exc.errno in FULL_ERRNOS:
            raise ArtifactStoreError(f"the artifact directory {where} is full ({exc.strerror})") from None
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ArtifactStoreError(f"the artifact directory {where} is not writable ({exc.strerror})") from None
        raise ArtifactStoreError(f"the artifact directory {where} failed: {exc.strerror or exc}",
                                 transient=exc.errno in TRANSIENT_ERRNOS) from None


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""A job's latest checkpoint, kept in the artifact store, and the files an attempt fetches from it.

One checkpoint per job (role ``checkpoint``, name ``checkpoint``), replaced each time once the new one is
complete. Its ``meta`` records the digest of the job's spec and the last step it covers; the steps reported
before it are written to the ledger first, so a resumed attempt's curve has no hole. A new attempt gets it
back in a folder of its own, its SHA-256 verified; one that does not verify, or is from another spec, is not
handed over: the attempt starts over, and its result says why. The checkpoint is removed when the job ends.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from mlpq.db import jobs
from mlpq.db.artifacts import ArtifactCorrupt, ArtifactStoreError
from mlpq.kinds.spec import spec_digest
from mlpq.models.context import FileSource, JobError
from mlpq.redact import one_line
from mlpq.worker import logs
from mlpq.worker.job_files import JobFiles

log = logging.getLogger(__name__)

T = TypeVar("T")
Retry = Callable[[Callable[[], T]], T]
ROLE = NAME = "checkpoint"


class InitFromUnavailable(JobError):
    reason = "init-from"


@dataclass(frozen=True)
class Resumed:
    """What a new attempt was given: the checkpoint's local copy and the last step it covers, or why not."""

    path: Path | None = None
    step: int | None = None
    notice: str | None = None


class Checkpoints:
    """Job ``files.job_id``'s checkpoint, as its attempt ``files.attempt`` keeps and reads it, in ``folder``.

    ``flush`` writes the metrics reported so far and returns the last step reported (``None``: none yet);
    ``retry`` retries a ledger read while the database is away.
    """

    def __init__(self, files: JobFiles, spec: BaseModel, flush: Callable[[], int | None], retry: Retry[Any],
                 folder: Path) -> None:
        self.files, self.digest, self.flush, self.retry, self.folder = files, spec_digest(spec), flush, retry, folder

    def save(self, source: FileSource) -> None:
        """``RunContext.checkpoint``: keep ``source`` as the job's checkpoint, after the steps it covers."""
        step = self.flush()
        self.files.keep(NAME, source, role=ROLE, meta={"spec": self.digest, "step": step})

    def resume(self) -> Resumed:
        """The job's checkpoint for this attempt, verified (the attempt's row then says where it resumes); a
        notice instead when it cannot be trusted."""
        store, job_id = self.files.store, self.files.job_id
        record = self.retry(lambda: store.find(job_id, NAME, role=ROLE))
        if record is None:
            return Resumed()
        meta = record.meta or {}
        if meta.get("spec") != self.digest:
            return refused(job_id, "it is from another spec")
        path = self.folder / NAME
        try:
            self.retry(lambda: store.copy_to(record, path))
        except (ArtifactCorrupt, ArtifactStoreError) as exc:
            return refused(job_id, one_line(exc.report(), logs.REASON_CHARS))
        step = meta.get("step") if isinstance(meta.get("step"), int) else None
        log.info("job %s attempt %d resumes from its checkpoint of step %s (attempt %d)", job_id,
                 self.files.attempt, step, record.attempt)
        if step is not None:
            self.retry(lambda: self.note_resumed(step + 1))
        return Resumed(path, step)

    def note_resumed(self, step: int) -> None:
        with self.files.store.engine.begin() as connection:
            jobs.note_resumed(connection, self.files.job_id, self.files.attempt, step)

    def fetch(self, job_id: str, name: str, sha256: str) -> Path:
        """``RunContext.fetch_artifact``: a verified local copy of job ``job_id``'s artifact ``name``."""
        store = self.files.store
        record = self.retry(lambda: store.find(job_id, name))
        if record is None:
            raise InitFromUnavailable(f"job {job_id} has no {name} (deleted?)")  # both checked by the spec
        if record.sha256 != sha256:
            raise InitFromUnavailable(f"{name} of job {job_id} is not the one submitted: SHA-256 "
                                      f"{record.sha256}, expected {sha256}")
        path = self.folder / f"{job_id}-{name}"
        try:
            self.retry(lambda: store.copy_to(record, path))
        except ArtifactCorrupt as exc:
            raise InitFromUnavailable(exc.report()) from exc
        return path



def remove(files: JobFiles, retry: Retry[Any]) -> None:
    """Drop the job's checkpoint (it ended); a failure only leaves it for ``mlpq delete``."""
    try:
        retry(lambda: files.store.remove(files.job_id, role=ROLE))
    except Exception as exc:  # the outcome is recorded; a left-over checkpoint is only wasted space
        log.warning("job %s: its checkpoint could not be removed: %s", files.job_id, logs.reason(exc))


def refused(job_id: str, why: str) -> Resumed:
    log.warning("job %s: its checkpoint is not resumed from: %s", job_id, why)
    return Resumed(notice=f"the checkpoint could not be used ({why}); the attempt started from the beginning")


def with_notice(result: dict[str, Any], notice: str | None) -> dict[str, Any]:
    """``result`` with ``notice`` added to its own (``; ``-separated)."""
    if notice is None:
        return result
    return {**result, "notice": "; ".join(filter(None, (result.get("notice"), notice)))}


@contextmanager
def attempt_folder() -> Iterator[Path]:
    """A private folder for the files an attempt fetches, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="mlpq-attempt-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)

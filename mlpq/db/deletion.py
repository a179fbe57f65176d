"""Deleting finished jobs with all they keep: metrics, attempts, logs and artifacts (foreign keys cascade)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete

from mlpq.db import jobs
from mlpq.db.artifacts import ArtifactStore, directory_files
from mlpq.db.records import JobRecord
from mlpq.db.schema import JOBS
from mlpq.db.status import TERMINAL
from mlpq.errors import InvalidError, UsageError


class JobNotFinished(InvalidError):
    """A job to delete is still submitting, queued or running: nothing was deleted."""


class NoArtifactDirectory(UsageError):
    """A job to delete keeps files in an artifact directory this command was not told of."""


def delete_finished(store: ArtifactStore, found: Sequence[JobRecord]) -> list[JobRecord]:
    """Delete the jobs ``found`` (all finished) in one transaction, then their unreferenced directory files.

    All or nothing: raises ``JobNotFinished`` if any is (by now) not finished, ``NoArtifactDirectory`` if one
    keeps files in a directory and ``store`` has none. Returns the jobs deleted, as they were.
    """
    unique = list({job.id: job for job in found}.values())
    with store.engine.begin() as connection:
        current = [jobs.find_job(connection, job.id) for job in unique]
        _check_finished(current)
        files = directory_files(connection, [job.id for job in current])
        if files and store.directory is None:
            raise NoArtifactDirectory("these jobs keep artifacts in an artifact directory: set MLPQ_ARTIFACT_DIR "
                                      "to the directory the workers use (nothing deleted)")
        _delete_rows(connection, current)
    store.collect(files)
    return current


def _check_finished(found: Sequence[JobRecord]) -> None:
    busy = [job for job in found if job.status not in TERMINAL]
    if busy:
        job = busy[0]
        more = f" (and {len(busy) - 1} more)" if len(busy) > 1 else ""
        raise JobNotFinished(f"job {job.id} is {job.status.value}{more}: cancel it or let it end first "
                             f"(nothing deleted)")


def _delete_rows(connection: Connection, found: Sequence[JobRecord]) -> None:
    """Delete the jobs, each only if finished (a finished status never changes; this is the last guard)."""
    ids = [job.id for job in found]
    deleted = connection.execute(delete(JOBS).where(JOBS.c.id.in_(ids), JOBS.c.status.in_(list(TERMINAL)))
                                 .returning(JOBS.c.id)).scalars().all()
    if len(deleted) != len(ids):
        raise JobNotFinished("a job changed while it was being deleted (nothing deleted)")

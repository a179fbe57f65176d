"""Choosing a job's artifact and writing it out verified: to a file renamed into place, or to a stream."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from mlpq.db.artifacts import ArtifactNotFound, ArtifactRecord, ArtifactStore, check_name
from mlpq.errors import UsageError
from mlpq.redact import printable, shown

LISTED_NAMES = 5
"""A job with several artifacts and no name given: how many of their names the error lists."""


class ArtifactChoiceError(UsageError):
    """A job keeps several artifacts and none was named."""


class DownloadPathError(UsageError):
    """The download's target cannot be written, or exists (without ``--force``)."""


def choose(job_id: str, kept: Sequence[ArtifactRecord], name: str | None) -> ArtifactRecord:
    """The artifact ``name`` among ``kept`` (job ``job_id``'s), or the only one when ``name`` is ``None``."""
    if name is not None:
        check_name(name)
        for record in kept:
            if record.name == name:
                return record
        raise ArtifactNotFound(f"job {job_id} has no artifact {shown(name)}")
    if not kept:
        raise ArtifactNotFound(f"job {job_id} has no artifacts")
    if len(kept) > 1:
        names = ", ".join(printable(record.name) for record in kept[:LISTED_NAMES])
        more = ", …" if len(kept) > LISTED_NAMES else ""
        raise ArtifactChoiceError(f"job {job_id} has {len(kept)} artifacts: name one ({names}{more})")
    return kept[0]


def target(record: ArtifactRecord, path: Path | None, force: bool) -> Path:
    """Where to write ``record``: ``path``, the artifact's name inside ``path`` if it is a directory, or in
    the current directory; raises ``DownloadPathError`` for a missing directory or an existing file."""
    if path is None or path.is_dir():
        path = (path or Path()) / record.name  # the name was checked when kept: one plain file name
    if not path.parent.is_dir():
        raise DownloadPathError(f"cannot write {shown(str(path))}: no directory {shown(str(path.parent))}")
    if path.is_dir() or (path.exists() and not force):
        raise DownloadPathError(f"{shown(str(path))} exists: give --force to overwrite it, or another -o")
    return path


def copy(store: ArtifactStore, record: ArtifactRecord, path: Path) -> None:
    """``store.copy_to``, with a path that cannot be written reported as ``DownloadPathError``."""
    try:
        store.copy_to(record, path)
    except OSError as exc:
        raise DownloadPathError(f"cannot write {shown(str(path))}: {exc.strerror or exc}") from None


def stream(store: ArtifactStore, record: ArtifactRecord, out: BinaryIO) -> None:
    """Write ``record``'s bytes to ``out`` only once all of them verified (spooled to a temporary file)."""
    with tempfile.TemporaryFile() as spool:
        for chunk in store.verified_chunks(record):
            spool.write(chunk)
        spool.seek(0)
        while chunk := spool.read(1 << 20):
            out.write(chunk)
        out.flush()


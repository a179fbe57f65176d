"""What a runner gets besides its spec, and the errors it may raise (no torch import)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Progress = Callable[[int, Mapping[str, Any]], None]
"""Called with a step (or epoch) number and that step's metrics."""
StopCheck = Callable[[], None]
"""Raises when the run must stop now (cancelled, or no longer this run's). Called between steps, so it must be
cheap: it reads flags that another thread sets on a timer, never a database or a queue."""
CHECK_EVERY_STEPS = 16
"""Loops of many tiny steps (Himmelblau's) call the stop check this often: well under a millisecond of work."""


def keep_going() -> None:
    """The stop check of a run that nothing stops."""


def _ignore(_: str) -> None:
    pass


@dataclass(frozen=True)
class StoredFile:
    """A file a job kept: its name, size in bytes and SHA-256 (hex)."""

    name: str
    size: int
    sha256: str


FileSource = bytes | Path
"""What a job hands over to keep: the bytes themselves, or a file whose bytes are streamed."""
SaveArtifact = Callable[[str, FileSource], StoredFile]
"""Keeps a named file as one of the job's artifacts; raises ``JobError`` (e.g. ``artifact too large``)."""
SaveCheckpoint = Callable[[FileSource], None]
"""Keeps the job's latest state, replacing the one before: a new attempt of the job gets it back. It covers the
steps reported before it: a resumed attempt reports the steps after the last of them."""
FetchArtifact = Callable[[str, str, str], Path]
"""``(job_id, name, sha256)``: a local copy of another job's artifact whose SHA-256 has been verified; raises
``JobError`` (no such artifact, or it does not verify)."""


def _digest_only(name: str, source: FileSource) -> StoredFile:
    """The artifact keeper of a run outside a worker (tests, benchmarks): nothing is kept."""
    import hashlib

    data = source if isinstance(source, bytes) else source.read_bytes()
    return StoredFile(name, len(data), hashlib.sha256(data).hexdigest())


def _no_checkpoint(_: FileSource) -> None:
    pass


def _no_ledger(job_id: str, name: str, sha256: str) -> Path:
    raise JobError(f"{name} of job {job_id}: a run outside a worker has no ledger to fetch it from")


@dataclass(frozen=True)
class RunContext:
    """Where a job runs: a torch device string, a progress callback, a data directory, a stop check.

    Training loops call ``check`` every few steps or every batch, whatever the
    logging interval, so a cancel or a lost lease stops the run within seconds.
    Job code that computes somewhere other than ``device`` says where through
    ``report_compute`` (e.g. ``"cpu (scalar engine)"``), so the job's provenance is true.

    ``save_artifact`` keeps a named file (a trained model); ``checkpoint`` keeps the job's latest state; a new
    attempt of a job finds the last one in ``resumed`` (a local file whose SHA-256 the worker has verified, or
    ``None``: start from the beginning); ``fetch_artifact`` fetches another job's artifact (a model to start from).
    What job code logs with ``logging`` goes to the job's log.
    """

    device: str
    progress: Progress
    data_dir: Path
    check: StopCheck = keep_going
    report_compute: Callable[[str], None] = _ignore
    save_artifact: SaveArtifact = _digest_only
    checkpoint: SaveCheckpoint = _no_checkpoint
    resumed: Path | None = None
    job_id: str | None = None
    """The job's id (``None`` outside a worker)."""
    fetch_artifact: FetchArtifact = _no_ledger


class JobError(Exception):
    """A failure a user can act on; ``reason`` is the short category shown first."""

    reason = "error"


class DivergedError(JobError):
    """The loss became NaN or infinite."""

    reason = "diverged"


class DataUnavailableError(JobError):
    """The requested dataset is neither on disk nor downloadable."""

    reason = "data missing"


class DataInvalidError(JobError):
    """The dataset's source files or cache do not match what they must be (checksum, shape, labels)."""

    reason = "data invalid"

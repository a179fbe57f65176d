"""What a runner gets besides its spec, and the errors it may raise (no torch import)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Progress = Callable[[int, Mapping[str, Any]], None]
"""Called with a step (or epoch) number and that step's metrics."""


def _ignore(_: str) -> None:
    pass


@dataclass(frozen=True)
class RunContext:
    """Where a job runs: a torch device string, a progress callback, a data directory.

    Job code that computes somewhere other than ``device`` says where through
    ``report_compute`` (e.g. ``"cpu (numpy engine)"``), so the job's provenance is true.
    """

    device: str
    progress: Progress
    data_dir: Path
    report_compute: Callable[[str], None] = _ignore


class JobError(Exception):
    """A failure a user can act on; ``reason`` is the short category shown first."""

    reason = "error"


class DivergedError(JobError):
    """The loss became NaN or infinite."""

    reason = "diverged"


class DataUnavailableError(JobError):
    """The requested dataset is neither on disk nor downloadable."""

    reason = "data missing"

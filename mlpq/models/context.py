"""What a runner gets besides its spec, and the errors it may raise (no torch import)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Progress = Callable[[int, Mapping[str, Any]], None]
"""Called with a step (or epoch) number and that step's metrics."""


@dataclass(frozen=True)
class RunContext:
    """Where a job runs: a torch device string, a progress callback, a data directory."""

    device: str
    progress: Progress
    data_dir: Path


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


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's text on one line, at most ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."

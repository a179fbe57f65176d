"""Job ids, and the error for one that matches no job or several (no SQLAlchemy import)."""

from __future__ import annotations

import re

from mlpq.errors import NotFoundError

JOB_ID_PATTERN = re.compile(r"[0-9a-f]{4,32}")


class JobLookupError(NotFoundError, LookupError):
    """No job, or more than one, matches an id prefix."""


def is_job_id(text: str) -> bool:
    """Whether ``text`` is shaped like a job id or a prefix of one (4 to 32 hex digits)."""
    return JOB_ID_PATTERN.fullmatch(text) is not None

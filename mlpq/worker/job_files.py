"""The files a running job keeps: the artifact store bound to one job's attempt, as its ``RunContext`` sees it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from mlpq.config import LEDGER_ARTIFACT_MAX_BYTES
from mlpq.db.artifacts import ArtifactRecord, ArtifactStore, ArtifactStoreError
from mlpq.models.context import FileSource, JobError, StopCheck, StoredFile
from mlpq.worker import logs
from mlpq.worker.lease import JobLost

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArtifactSettings:
    """Where a worker keeps its jobs' files (``MLPQ_ARTIFACT_DIR``; ``None``: in the ledger) and the largest
    it accepts (``MLPQ_ARTIFACT_MAX_BYTES``)."""

    directory: Path | None = None
    max_bytes: int = LEDGER_ARTIFACT_MAX_BYTES


class ArtifactNotKept(JobError):
    """The database or the artifact directory stayed away past the retry deadline."""

    reason = "artifact not kept"


class JobFiles:
    """Job ``job_id``'s attempt ``attempt`` keeping files: each write is retried for up to ``retry_s`` seconds
    while the database or the directory is away; ``check`` (the lease's) is asked before each try, so an
    attempt that is no longer the job's writes nothing."""

    def __init__(self, engine: Engine, settings: ArtifactSettings, job_id: str, attempt: int, check: StopCheck,
                 retry_s: float) -> None:
        self.store = ArtifactStore(engine, settings.directory, settings.max_bytes)
        self.job_id, self.attempt, self.check, self.retry_s = job_id, attempt, check, retry_s

    def save_artifact(self, name: str, source: FileSource) -> StoredFile:
        """``RunContext.save_artifact``: keep ``source`` as the job's artifact ``name``."""
        record = self.keep(name, source)
        return StoredFile(record.name, record.size, record.sha256)

    def keep(self, name: str, source: FileSource, *, role: str = "artifact",
             meta: dict[str, Any] | None = None) -> ArtifactRecord:
        """Put ``source`` in the store as this attempt's; raises ``JobError`` (too large, bad name, directory
        missing, read-only or full, or ``ArtifactNotKept``) or ``JobLost``."""
        give_up = time.monotonic() + self.retry_s
        delay = 0.5
        while True:
            self.check()
            try:
                return self.store.put(self.job_id, self.attempt, name, source, role=role, meta=meta)
            except IntegrityError as exc:  # the job's row is gone: its ledger was replaced under the worker
                raise JobLost(self.job_id) from exc
            except (OperationalError, InterfaceError, ArtifactStoreError) as exc:
                if isinstance(exc, ArtifactStoreError) and not exc.transient:
                    raise
                if time.monotonic() + delay > give_up:
                    raise ArtifactNotKept(f"{name}: {logs.reason(exc)}") from exc
                log.warning("keeping %s of job %s failed, retrying in %.1f s: %s", name, self.job_id, delay,
                            logs.reason(exc))
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

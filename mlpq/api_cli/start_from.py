"""``--init-from JOB``: a job that starts from another job's trained model, checked before it is submitted.

The source must be a succeeded job of the same kind that kept the kind's model artifact, with the same
architecture (``Kind.start_from``); the spec then names it by its full id and records the artifact's SHA-256,
which the worker checks before loading it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from mlpq.db import jobs
from mlpq.db.artifacts import list_artifacts
from mlpq.db.lookup import is_job_id
from mlpq.db.status import JobStatus
from mlpq.errors import NotFoundError, UsageError
from mlpq.kinds import Kind
from mlpq.redact import shown

SOURCE, DIGEST = "init_from", "init_sha256"


class StartFromError(UsageError):
    """The job to start from is not one this job can start from."""


class StartFromMissing(NotFoundError):
    """The job to start from kept no model."""


def resolve(connection: Connection, kind: Kind, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``init_from`` made the source job's full id and ``init_sha256`` its model's SHA-256
    (unchanged without ``init_from``); raises ``StartFromError``, ``StartFromMissing`` or ``JobLookupError``."""
    wanted = params.get(SOURCE)
    if kind.start_from is None or wanted is None:
        return dict(params)
    if not isinstance(wanted, str) or not is_job_id(wanted):
        raise StartFromError(f"--init-from {shown(str(wanted))}: not a job id")
    source = jobs.find_job(connection, wanted)
    if source.kind != kind.name or source.status is not JobStatus.SUCCEEDED:
        raise StartFromError(f"--init-from {source.id[:12]}: not a succeeded {kind.name} job "
                             f"({source.kind}, {source.status.value})")
    model = next((a for a in list_artifacts(connection, source.id) if a.name == kind.start_from.artifact), None)
    if model is None:
        raise StartFromMissing(f"--init-from {source.id[:12]}: the job kept no {kind.start_from.artifact}")
    defaults = {name: field.default for name, field in kind.spec.model_fields.items()}
    differences = [f"{name} {value(params, defaults, name)} here, {value(source.params, defaults, name)} there"
                   for name in kind.start_from.same
                   if value(params, defaults, name) != value(source.params, defaults, name)]
    if differences:
        raise StartFromError(f"--init-from {source.id[:12]}: another architecture: {'; '.join(differences)}")
    return {**params, SOURCE: source.id, DIGEST: model.sha256}


def value(params: Mapping[str, Any], defaults: Mapping[str, Any], name: str) -> Any:
    return params.get(name, defaults.get(name))

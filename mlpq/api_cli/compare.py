"""``mlpq compare``: jobs side by side, with the parameters that differ and the figures that sum each up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlpq import kinds
from mlpq.api_cli.output import SHORT_ID, columns_of, flat_params, format_value, seconds, table

if TYPE_CHECKING:
    from mlpq.db.records import JobRecord

RESULT_PREFIX = "result."
MISSING = object()


def differing_params(jobs: Sequence[JobRecord]) -> list[str]:
    """The parameters whose values are not the same for every job (all of them for one job)."""
    names = list(dict.fromkeys(name for job in jobs for name in job.params))
    if len(jobs) < 2:
        return names
    return [name for name in names if len({repr(job.params.get(name, MISSING)) for job in jobs}) > 1]


def result_fields(kind_name: str) -> tuple[str, ...]:
    """The result values compared for a kind; none for a kind not installed here."""
    kind = kinds.find(kind_name)
    return kind.result_fields if kind else ()


def figures(job: JobRecord) -> dict[str, Any]:
    """The job's headline result values, ``None`` where it has none (not finished, failed)."""
    result = job.result or {}
    return {name: result.get(name) for name in result_fields(job.kind)}


def comparison(jobs: Sequence[JobRecord]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows for ``--format json|csv``: every parameter as ``param.NAME``, figures as ``result.NAME``."""
    rows = [
        {"id": job.id, "kind": job.kind, "status": job.status.value, "device": job.device,
         **flat_params(job.params), **{RESULT_PREFIX + name: value for name, value in figures(job).items()},
         "duration_s": job.duration_seconds}
        for job in jobs
    ]
    return rows, columns_of(rows, ["id", "kind", "status", "device"])


def comparison_table(jobs: Sequence[JobRecord]) -> str:
    """One line per job: kind, status, the parameters that differ, the headline figures, the duration."""
    params = differing_params(jobs)
    names = list(dict.fromkeys(name for job in jobs for name in result_fields(job.kind)))
    rows = []
    for job in jobs:
        row: dict[str, Any] = {"id": job.id[:SHORT_ID], "kind": job.kind, "status": job.status.value}
        row.update({name: format_value(job.params[name]) for name in params if name in job.params})
        row.update({name: format_value(value) for name, value in figures(job).items() if value is not None})
        row["duration"] = seconds(job.duration_seconds)
        rows.append(row)
    return table(rows, ["id", "kind", "status", *params, *names, "duration"])

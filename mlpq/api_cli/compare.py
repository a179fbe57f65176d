"""``mlpq compare``: jobs side by side, with the parameters that differ, the figures that sum each up and the best."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlpq import kinds
from mlpq.api_cli.output import SHORT_ID, columns_of, figures, flat_figures, flat_params, format_value, \
    result_fields, seconds, shown_params, table

if TYPE_CHECKING:
    from mlpq.db.records import JobRecord

MISSING = object()
BEST_MARK = "★"
"""After the id of the best job, as the web UI's sweep page marks it."""


def differing_params(jobs: Sequence[JobRecord]) -> list[str]:
    """The parameters, as their kinds word them (``Kind.shown_params``), whose values are not the same for every
    job (all of them for one job)."""
    shown = [shown_params(job) for job in jobs]
    names = list(dict.fromkeys(name for params in shown for name in params))
    if len(jobs) < 2:
        return names
    return [name for name in names if len({repr(params.get(name, MISSING)) for params in shown}) > 1]


def best_job(jobs: Sequence[JobRecord]) -> str | None:
    """The id of the job with the best result figure (``Kind.best`` of the first job's kind), if any has one."""
    kind = kinds.find(jobs[0].kind) if jobs else None
    if kind is None or kind.best is None:
        return None
    name, direction = kind.best
    scored = [(job.result[name], job) for job in jobs
              if job.kind == kind.name and job.result and job.result.get(name) is not None]
    if not scored:
        return None
    return (min if direction == "min" else max)(scored, key=lambda pair: pair[0])[1].id


def comparison(jobs: Sequence[JobRecord]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows for ``--format json|csv``: every parameter as ``param.NAME``, figures as ``result.NAME``, and
    whether the job is the best."""
    best = best_job(jobs)
    rows = [
        {"id": job.id, "kind": job.kind, "status": job.status.value, "device": job.device,
         **flat_params(job.params), **flat_figures(job), "duration_s": job.duration_seconds, "best": job.id == best}
        for job in jobs
    ]
    return rows, columns_of(rows, ["id", "kind", "status", "device"])


def comparison_table(jobs: Sequence[JobRecord]) -> str:
    """One line per job: kind, status, the parameters that differ, the headline figures, the duration; the best
    job's id marked ★."""
    params = differing_params(jobs)
    names = list(dict.fromkeys(name for job in jobs for name in result_fields(job)))
    best = best_job(jobs)
    rows = []
    for job in jobs:
        row: dict[str, Any] = {"id": job.id[:SHORT_ID] + (f" {BEST_MARK}" if job.id == best else ""),
                               "kind": job.kind, "status": job.status.value}
        shown = shown_params(job)
        row.update({name: format_value(shown[name]) for name in params if name in shown})
        row.update({name: format_value(value) for name, value in figures(job).items() if value is not None})
        row["duration"] = seconds(job.duration_seconds)
        rows.append(row)
    return table(rows, ["id", "kind", "status", *params, *names, "duration"])

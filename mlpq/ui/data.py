"""What the web UI shows, made from what ``Client`` returns (charts: ``mlpq.ui.charts``).

The JSON endpoints return exactly the shapes the CLI prints with ``--json`` (``mlpq results``, ``show``,
``compare`` and ``workers``), built by the same functions; the page helpers add display strings to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlpq import kinds
from mlpq.api_cli import output
from mlpq.api_cli.api import JobView, WorkerInfo
from mlpq.api_cli.compare import comparison, differing_params, figures, result_fields
from mlpq.db.records import JobRecord


# JSON: the shapes of the CLI's --json output.

def jobs_json(jobs: Sequence[JobRecord]) -> list[dict[str, Any]]:
    """``mlpq results --format json``."""
    return output.listing(jobs)[0]


def job_json(view: JobView) -> dict[str, Any]:
    """``mlpq show --json``."""
    return output.job_detail(view)


def sweep_json(jobs: Sequence[JobRecord]) -> list[dict[str, Any]]:
    """``mlpq compare --sweep ID --format json``."""
    return comparison(jobs)[0]


def workers_json(workers: Sequence[WorkerInfo]) -> list[dict[str, Any]]:
    """``mlpq workers --json``."""
    return [vars(worker) for worker in workers]


# Pages: the same rows with display strings added.

def is_done(job: JobRecord) -> bool:
    return job.status.terminal


def job_rows(jobs: Sequence[JobRecord]) -> list[dict[str, Any]]:
    """The jobs table: ``mlpq results``'s columns."""
    return [{**output.job_row(job), "short_id": job.id[:output.SHORT_ID], "created": output.local_time(job.created_at),
             "duration": output.seconds(job.duration_seconds)} for job in jobs]


def job_page(view: JobView) -> dict[str, Any]:
    """``mlpq show``'s fields, formatted for people."""
    job = view.job
    return {
        **output.job_detail(view), "short_id": job.id[:output.SHORT_ID], "done": is_done(job),
        "param_items": [(name, output.format_value(value)) for name, value in job.params.items() if value is not None],
        "times": [(label, output.local_time(moment)) for label, moment in
                  (("created", job.created_at), ("started", job.started_at), ("finished", job.finished_at))],
        "duration": output.seconds(job.duration_seconds),
        "result_items": output.result_items(job),
        "headline": output.headline(job),
        "provenance_text": output.provenance_text(job.provenance) if job.provenance else None,
    }


def best_job(jobs: Sequence[JobRecord]) -> str | None:
    """The id of the member with the best result figure (``Kind.best`` of the first member's kind), if any has
    one."""
    kind = kinds.find(jobs[0].kind) if jobs else None
    if kind is None or kind.best is None:
        return None
    name, direction = kind.best
    scored = [(job.result[name], job) for job in jobs
              if job.kind == kind.name and job.result and job.result.get(name) is not None]
    if not scored:
        return None
    return (min if direction == "min" else max)(scored, key=lambda pair: pair[0])[1].id


def sweep_page(jobs: Sequence[JobRecord]) -> dict[str, Any]:
    """``mlpq compare``: one row per member with the parameters that differ and the result figures."""
    params = differing_params(jobs)
    names = list(dict.fromkeys(name for job in jobs for name in result_fields(job.kind)))
    best = best_job(jobs)
    rows = [{"id": job.id, "short_id": job.id[:output.SHORT_ID], "status": job.status.value, "best": job.id == best,
             "params": [output.format_value(job.params.get(name)) for name in params],
             "figures": [output.format_value(value) if value is not None else "-" for value in figures(job).values()],
             "duration": output.seconds(job.duration_seconds)} for job in jobs]
    return {"params": params, "figures": names, "rows": rows, "best": best, "done": all(map(is_done, jobs))}


def worker_rows(workers: Sequence[WorkerInfo]) -> list[dict[str, Any]]:
    """``mlpq workers``'s columns."""
    return [{"name": w.name, "host": w.host, "device": w.device, "gpu": output.gpu_text(w) or "-",
             "running": list(w.active_jobs), "queued": w.queued} for w in workers]

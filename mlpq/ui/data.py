"""What the web UI shows, made from what ``Client`` returns (charts: ``mlpq.ui.charts``).

The JSON endpoints return exactly the shapes the CLI prints with ``--json`` (``mlpq results``, ``show``,
``compare`` and ``workers``), built by the same functions; the page helpers add display strings to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlpq.api_cli import output
from mlpq.api_cli.api import JobView, LogView, WorkerInfo
from mlpq.api_cli.compare import best_job, comparison, differing_params
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


def log_json(view: LogView, page: int) -> dict[str, Any]:
    """A page of a job's log (``mlpq logs --json``'s rows, each with its ``text`` as ``mlpq logs`` prints it,
    control characters escaped); ``done`` once the job has ended and this page has its last lines."""
    return {"lines": [{**output.log_row(line), "text": output.log_text(line)} for line in view.lines],
            "done": view.job.status.terminal and len(view.lines) < page}


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
        "param_items": [(name, output.format_value(value)) for name, value in output.shown_params(job).items()
                        if value is not None],
        "times": [(label, output.local_time(moment)) for label, moment in
                  (("created", job.created_at), ("started", job.started_at), ("finished", job.finished_at))],
        "duration": output.seconds(job.duration_seconds),
        "result_items": output.result_items(job),
        "headline": output.headline(job),
        "provenance_text": output.provenance_text(job.provenance) if job.provenance else None,
        "attempt_lines": output.attempt_lines(view),
    }


def sweep_page(jobs: Sequence[JobRecord]) -> dict[str, Any]:
    """``mlpq compare``: one row per member with the parameters that differ and the result figures."""
    params = differing_params(jobs)
    names = list(dict.fromkeys(name for job in jobs for name in output.result_fields(job)))
    best = best_job(jobs)
    rows = [{"id": job.id, "short_id": job.id[:output.SHORT_ID], "status": job.status.value, "best": job.id == best,
             "params": [output.format_value(shown.get(name)) for name in params],
             "figures": [output.format_value(value) if (value := (job.result or {}).get(name)) is not None else "-"
                         for name in names],
             "duration": output.seconds(job.duration_seconds)} for job in jobs for shown in [output.shown_params(job)]]
    return {"params": params, "figures": names, "rows": rows, "best": best, "done": all(map(is_done, jobs))}


def worker_rows(workers: Sequence[WorkerInfo]) -> list[dict[str, Any]]:
    """``mlpq workers``'s columns."""
    return [{"name": w.name if w.state == "running" else f"{w.name} ({w.state})", "host": w.host,
             "device": w.device, "gpu": output.gpu_text(w) or "-", "running": list(w.active_jobs), "queued": w.queued,
             "threads": output.threads_text(w) or "-"} for w in workers]

"""What the web UI shows, made from what ``Client`` returns: the one module that knows those types.

The JSON endpoints return exactly the shapes the CLI prints with ``--json`` (``mlpq results``, ``show``,
``compare`` and ``workers``), built by the same functions; the page helpers add display strings to them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mlpq.api_cli import output
from mlpq.api_cli.api import JobView, WorkerInfo
from mlpq.api_cli.compare import RESULT_FIGURES, comparison, differing_params, figures
from mlpq.api_cli.plot import HIMMELBLAU_MINIMA, labels, trajectories
from mlpq.db.schema import Job

BEST: dict[str, tuple[str, Callable[..., Any]]] = {"himmelblau": ("f", min), "mnist": ("test_accuracy", max)}
"""The result figure that makes a job the best of its sweep, and whether least or most wins."""
MNIST_LOSSES = (("train_loss", "train", False), ("test_loss", "test", True))
"""MNIST's loss series: metric, label and whether it is drawn dashed."""


# JSON: the shapes of the CLI's --json output.

def jobs_json(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """``mlpq results --format json``."""
    return output.listing(jobs)[0]


def job_json(view: JobView) -> dict[str, Any]:
    """``mlpq show --json``."""
    return output.job_detail(view)


def sweep_json(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """``mlpq compare --sweep ID --format json``."""
    return comparison(jobs)[0]


def workers_json(workers: Sequence[WorkerInfo]) -> list[dict[str, Any]]:
    """``mlpq workers --json``."""
    return [vars(worker) for worker in workers]


# Pages: the same rows with display strings added.

def is_done(job: Job) -> bool:
    return job.status.terminal


def job_rows(jobs: Sequence[Job]) -> list[dict[str, Any]]:
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
        "result_items": [(name, output.format_value(value)) for name, value in (job.result or {}).items()
                         if name not in ("headline", "starts") and value is not None],
        "headline": output.headline(job),
        "provenance_text": output.provenance_text(job.provenance) if job.provenance else None,
    }


def best_job(jobs: Sequence[Job]) -> str | None:
    """The id of the member with the best result figure, if any has one."""
    scored = [(job.result[BEST[job.kind][0]], job) for job in jobs
              if job.kind in BEST and job.result and job.result.get(BEST[job.kind][0]) is not None]
    if not scored:
        return None
    choose = BEST[scored[0][1].kind][1]
    return choose(scored, key=lambda pair: pair[0])[1].id


def sweep_page(jobs: Sequence[Job]) -> dict[str, Any]:
    """``mlpq compare``: one row per member with the parameters that differ and the result figures."""
    params = differing_params(jobs)
    names = list(dict.fromkeys(name for job in jobs for name in RESULT_FIGURES.get(job.kind, ())))
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


# Charts: panels of x/y series that static/mlpq.js draws with Chart.js.

def series(label: str, points: Sequence[Sequence[float]], group: int, *, dashed: bool = False,
           legend: bool = True) -> dict[str, Any]:
    return {"label": label, "group": group, "dashed": dashed, "legend": legend,
            "points": [[float(x), float(y)] for x, y in points]}


def himmelblau_panels(views: Sequence[JobView]) -> list[dict[str, Any]]:
    """Each start's path over the contours (one legend entry per job); the four minima as stars."""
    paths = []
    for group, (view, label) in enumerate(zip(views, labels(views))):
        for number, path in enumerate(trajectories(view)):
            paths.append(series(label if number == 0 else f"{label} #{number + 1}", path, group, legend=number == 0))
    return [{"title": "Himmelblau: each start's path", "x": "x", "y": "y", "contours": True,
             "series": paths, "minima": [list(point) for point in HIMMELBLAU_MINIMA]}]


def mnist_panels(views: Sequence[JobView]) -> list[dict[str, Any]]:
    """Train and test loss, and test accuracy, per epoch."""
    losses, accuracies = [], []
    for group, (view, label) in enumerate(zip(views, labels(views))):
        for key, name, dashed in MNIST_LOSSES:
            losses.append(series(f"{label} {name}", [(m.step, m.values[key]) for m in view.metrics if key in m.values],
                                 group, dashed=dashed))
        accuracies.append(series(label, [(m.step, m.values["test_accuracy"]) for m in view.metrics
                                         if "test_accuracy" in m.values], group))
    return [{"title": "loss per sample (test dashed)", "x": "epoch", "y": "loss", "series": losses},
            {"title": "test accuracy", "x": "epoch", "y": "accuracy", "series": accuracies}]


PANELS: dict[str, Callable[[Sequence[JobView]], list[dict[str, Any]]]] = {
    "himmelblau": himmelblau_panels, "mnist": mnist_panels}


def chart(views: Sequence[JobView]) -> dict[str, Any]:
    """The chart of one job or of a sweep's members (of one kind); ``done`` once none will grow."""
    kind = views[0].job.kind if views else None
    drawn = [view for view in views if view.job.kind == kind]
    return {"kind": kind, "done": all(is_done(view.job) for view in views),
            "panels": PANELS[kind](drawn) if kind in PANELS else []}

"""The figure of some jobs, as ``mlpq plot`` and the web UI both draw it: their kind's description
(``Kind.figure``, see ``mlpq.figures``) with short legend labels, and a caption for what the labels leave out.

Neither torch nor matplotlib is imported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlpq import kinds
from mlpq.api_cli.compare import differing_params
from mlpq.api_cli.output import format_value
from mlpq.figures import Figure, Plotted, metrics_figure

if TYPE_CHECKING:
    from mlpq.api_cli.api import JobView
    from mlpq.db.records import JobRecord

ID_CHARS = 8
LABEL_VALUES = 2
"""A legend label names at most this many parameters besides the job's id."""
LABEL_PART_CHARS = 18
"""... each as ``name=value`` of at most this many characters for every job; longer ones go to the caption."""
CAPTION_VALUE_CHARS = 80


def part(job: JobRecord, name: str, limit: int | None = None) -> str:
    text = f"{name}={format_value(job.params.get(name))}"
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


def labels(jobs: Sequence[JobRecord]) -> tuple[list[str], str]:
    """Each job's legend label (its short id and up to ``LABEL_VALUES`` short parameters that differ between
    the jobs and that every job has, the seed last) and a caption line per job with the other differing
    parameters it has."""
    names = sorted(differing_params(jobs), key=lambda name: name == "seed") if len(jobs) > 1 else []
    short = [name for name in names if all(job.params.get(name) is not None and len(part(job, name)) <= LABEL_PART_CHARS
                                           for job in jobs)][:LABEL_VALUES]
    rest = [name for name in names if name not in short]
    found = [" ".join([job.id[:ID_CHARS], *(part(job, name) for name in short)]) for job in jobs]
    lines = [(job.id[:ID_CHARS], [part(job, name, CAPTION_VALUE_CHARS) for name in rest
                                  if job.params.get(name) is not None]) for job in jobs]
    return found, "\n".join(f"{job_id}: {', '.join(parts)}" for job_id, parts in lines if parts)


def plotted(views: Sequence[JobView]) -> tuple[list[Plotted], str]:
    """The jobs as a kind's figure function takes them, and the caption of their labels."""
    names, caption = labels([view.job for view in views])
    return [Plotted(view.job.id, label, view.job.params, view.job.result,
                    tuple((metric.step, metric.values) for metric in view.metrics))
            for view, label in zip(views, names)], caption


def figure(views: Sequence[JobView]) -> Figure:
    """The figure of jobs of one kind: the kind's own, or each metric per step (also for a kind not installed
    here)."""
    jobs, caption = plotted(views)
    kind = kinds.find(views[0].job.kind) if views else None
    return (kind.describe(jobs) if kind else metrics_figure(jobs)).with_caption(caption)

"""The web UI's charts: panels of x/y series that static/mlpq.js draws with Chart.js.

A kind names its panel function in ``Kind.chart``; a kind without one gets ``metrics_panels``
(each numeric metric against the step), as ``mlpq plot`` falls back to ``metrics_figure``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mlpq import kinds
from mlpq.api_cli.api import JobView
from mlpq.api_cli.output import step_name
from mlpq.api_cli.plot import labels, numeric_keys, trajectories
from mlpq.kinds.himmelblau import MINIMA

Panels = Callable[[Sequence[JobView]], list[dict[str, Any]]]
MNIST_LOSSES = (("train_loss", "train", False), ("test_loss", "test", True))
"""MNIST's loss series: metric, label and whether it is drawn dashed."""


def series(label: str, points: Sequence[Sequence[float]], group: int, *, dashed: bool = False,
           legend: bool = True) -> dict[str, Any]:
    return {"label": label, "group": group, "dashed": dashed, "legend": legend,
            "points": [[float(x), float(y)] for x, y in points]}


def metric_points(view: JobView, key: str) -> list[tuple[int, float]]:
    """(step, value) for each recorded step that has the metric."""
    return [(m.step, m.values[key]) for m in view.metrics if key in m.values]


def himmelblau_panels(views: Sequence[JobView]) -> list[dict[str, Any]]:
    """Each start's path over the contours (one legend entry per job); the four minima as stars."""
    paths = []
    for group, (view, label) in enumerate(zip(views, labels(views))):
        for number, path in enumerate(trajectories(view)):
            paths.append(series(label if number == 0 else f"{label} #{number + 1}", path, group, legend=number == 0))
    return [{"title": "Himmelblau: each start's path", "x": "x", "y": "y", "contours": True,
             "series": paths, "minima": [list(point) for point in MINIMA]}]


def mnist_panels(views: Sequence[JobView]) -> list[dict[str, Any]]:
    """Train and test loss, and test accuracy, per epoch."""
    losses, accuracies = [], []
    for group, (view, label) in enumerate(zip(views, labels(views))):
        for key, name, dashed in MNIST_LOSSES:
            losses.append(series(f"{label} {name}", metric_points(view, key), group, dashed=dashed))
        accuracies.append(series(label, metric_points(view, "test_accuracy"), group))
    return [{"title": "loss per sample (test dashed)", "x": "epoch", "y": "loss", "series": losses},
            {"title": "test accuracy", "x": "epoch", "y": "accuracy", "series": accuracies}]


def metrics_panels(views: Sequence[JobView]) -> list[dict[str, Any]]:
    """The default: one panel per numeric metric, each job a line against the step."""
    unit = step_name(views[0].job.kind) if views else "step"
    return [{"title": key, "x": unit, "y": key,
             "series": [series(label, metric_points(view, key), group)
                        for group, (view, label) in enumerate(zip(views, labels(views)))]}
            for key in numeric_keys(views)]


def panels_for(kind_name: str | None) -> Panels:
    """The kind's own panels (``Kind.chart``), or ``metrics_panels``."""
    kind = kinds.find(kind_name) if kind_name else None
    return kinds.load_object(kind.chart) if kind and kind.chart else metrics_panels


def chart(views: Sequence[JobView]) -> dict[str, Any]:
    """The chart of one job or of a sweep's members (of one kind); ``done`` once none will grow."""
    kind = views[0].job.kind if views else None
    drawn = [view for view in views if view.job.kind == kind]
    return {"kind": kind, "done": all(view.job.status.terminal for view in views),
            "panels": panels_for(kind)(drawn) if drawn else []}

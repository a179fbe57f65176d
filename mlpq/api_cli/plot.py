"""``mlpq plot``: each kind's figure (``Kind.plot``), or by default every metric against the step.

mlpq's kinds draw Himmelblau trajectories over the function's contours and MNIST
loss and accuracy per epoch. Drawn on matplotlib's Agg canvas (no display).
Only ``mlpq plot`` imports this module; a kind's plot function may reuse
``labels``, ``colors`` and ``series``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from mlpq import kinds
from mlpq.api_cli.api import JobView
from mlpq.api_cli.compare import differing_params
from mlpq.api_cli.output import format_value, step_name
from mlpq.kinds.himmelblau import MINIMA
EXTENT = 6.0
DPI = 100
LABEL_VALUE_CHARS = 24


def labels(views: Sequence[JobView]) -> list[str]:
    """Each job's short id and, when several are drawn, the parameters that tell them apart."""
    names = differing_params([view.job for view in views]) if len(views) > 1 else []
    return [" ".join([view.job.id[:8], *(f"{name}={format_value(view.job.params.get(name))[:LABEL_VALUE_CHARS]}"
                                         for name in names)]) for view in views]


def colors(count: int) -> list[str]:
    return [f"C{i % 10}" for i in range(count)]


def trajectories(view: JobView) -> list[list[tuple[float, float]]]:
    """Each start's path through the recorded points, ending at its end point; empty without ``points``."""
    recorded = [metric.values["points"] for metric in view.metrics if "points" in metric.values]
    if not recorded:
        return []
    ends = [(s["x"], s["y"]) for s in (view.job.result or {}).get("starts", [])]
    paths = [[(x, y) for x, y, _f in per_start] for per_start in zip(*recorded)]
    return [path + [end] for path, end in zip(paths, ends)] if len(ends) == len(paths) else paths


def himmelblau_figure(views: Sequence[JobView]) -> Figure:
    figure = Figure(figsize=(7.5, 6), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    axis = np.linspace(-EXTENT, EXTENT, 400)
    x, y = np.meshgrid(axis, axis)
    f = (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2
    filled = axes.contourf(x, y, np.log10(1 + f), levels=30, cmap="viridis")
    figure.colorbar(filled, ax=axes, label="log10(1 + f)")
    for view, label, color in zip(views, labels(views), colors(len(views))):
        paths = trajectories(view)
        if paths:
            axes.add_collection(LineCollection(paths, colors=color, linewidths=1.2, label=label))
            axes.scatter([p[0][0] for p in paths], [p[0][1] for p in paths], s=18, facecolors="none",
                         edgecolors=color)
        ends = [(s["x"], s["y"]) for s in (view.job.result or {}).get("starts", [])]
        if ends:
            axes.scatter(*zip(*ends), marker="x", s=40, color=color, label=None if paths else f"{label} (end points)")
    axes.scatter(*zip(*MINIMA), marker="*", s=220, color="white", edgecolors="black", zorder=5,
                 label="minima")
    axes.set(xlim=(-EXTENT, EXTENT), ylim=(-EXTENT, EXTENT), xlabel="x", ylabel="y", aspect="equal",
             title="Himmelblau: f(x, y) = (x² + y − 11)² + (x + y² − 7)²")
    axes.legend(loc="upper left", fontsize="small", framealpha=0.8)
    return figure


def series(view: JobView, key: str) -> list[float]:
    """One value per recorded epoch; NaN (a gap in the line) where an epoch lacks it."""
    return [metric.values.get(key, np.nan) for metric in view.metrics]


def mnist_figure(views: Sequence[JobView]) -> Figure:
    figure = Figure(figsize=(11, 4.5), dpi=DPI, layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for view, label, color in zip(views, labels(views), colors(len(views))):
        epochs = [metric.step for metric in view.metrics]
        loss_axes.plot(epochs, series(view, "train_loss"), "-o", color=color, markersize=3, label=f"{label} train")
        loss_axes.plot(epochs, series(view, "test_loss"), "--s", color=color, markersize=3, label=f"{label} test")
        accuracy_axes.plot(epochs, series(view, "test_accuracy"), "-o", color=color, markersize=3, label=label)
    loss_axes.set(xlabel="epoch", ylabel="loss per sample", title="train (solid) and test (dashed) loss")
    accuracy_axes.set(xlabel="epoch", ylabel="test accuracy", title="test accuracy")
    accuracy_axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    for axes in (loss_axes, accuracy_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    return figure


def numeric_keys(views: Sequence[JobView]) -> list[str]:
    """The metrics that are numbers somewhere, in the order they first appear."""
    return list(dict.fromkeys(key for view in views for metric in view.metrics for key, value in metric.values.items()
                              if isinstance(value, int | float) and not isinstance(value, bool)))


def metrics_figure(views: Sequence[JobView]) -> Figure:
    """The default figure: one panel per numeric metric, each job a line against the step."""
    keys = numeric_keys(views) or ["(no metrics)"]
    figure = Figure(figsize=(5 * min(len(keys), 3), 4 * -(-len(keys) // 3)), dpi=DPI, layout="constrained")
    panels = figure.subplots(-(-len(keys) // 3), min(len(keys), 3), squeeze=False).ravel()
    unit = step_name(views[0].job.kind)
    for key, axes in zip(keys, panels):
        for view, label, color in zip(views, labels(views), colors(len(views))):
            axes.plot([metric.step for metric in view.metrics], series(view, key), "-o", color=color, markersize=3,
                      label=label)
        axes.set(xlabel=unit, title=key)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    return figure


def figure_for(kind_name: str) -> Callable[[Sequence[JobView]], Figure]:
    """The kind's own figure, or ``metrics_figure``."""
    kind = kinds.find(kind_name)
    return kinds.load_object(kind.plot) if kind and kind.plot else metrics_figure


def draw(views: Sequence[JobView], path: Path) -> tuple[int, int]:
    """Draw jobs of one kind into ``path`` (PNG, SVG or PDF by its suffix); returns the size in pixels."""
    figure = figure_for(views[0].job.kind)(views)
    FigureCanvasAgg(figure)
    figure.savefig(path)
    width, height = figure.get_size_inches() * figure.dpi
    return round(width), round(height)

"""A figure as plain data: panels of series, contour grids and marks, drawn by ``mlpq plot`` with matplotlib
and by the web UI with Chart.js.

A kind turns its jobs into a ``Figure`` with one function (``Kind.figure``); a kind without one gets
``metrics_figure``, each numeric metric against the step. Nothing here imports torch or matplotlib, so kinds
and the web server can build figures; ``as_json`` gives the description as the UI receives it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Point = tuple[float, float]
Line = Literal["solid", "dashed", "none"]
Marker = Literal["none", "circle", "open-circle", "square", "cross", "star"]
Ticks = Literal["auto", "integer", "percent"]


@dataclass(frozen=True)
class Plotted:
    """One job as a figure sees it: its legend label (short: the id and a few values that tell it apart),
    parameters, result and the metrics of each step, in order."""

    id: str
    label: str
    params: Mapping[str, Any]
    result: Mapping[str, Any] | None
    metrics: tuple[tuple[int, Mapping[str, Any]], ...]


@dataclass(frozen=True)
class Axis:
    label: str
    limits: tuple[float, float] | None = None
    """Shown range; by default the data's."""
    scale: Literal["linear", "log"] = "linear"
    ticks: Ticks = "auto"
    """``integer`` (epochs) or ``percent`` (a fraction shown as %)."""


@dataclass(frozen=True)
class Series:
    """A line through points, or marks at them. ``group`` picks the colour (one per job); ``None`` is the
    highlight colour of marks that belong to no job (Himmelblau's minima)."""

    label: str
    points: tuple[Point, ...]
    group: int | None = 0
    line: Line = "solid"
    marker: Marker = "none"
    legend: bool = True
    """Whether the legend lists it (once per job is enough when a job has many lines)."""


@dataclass(frozen=True)
class Contours:
    """Filled contours behind a panel: ``z[j][i]`` is the value at ``(x[i], y[j])``, in ``levels`` bands."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    z: tuple[tuple[float, ...], ...]
    label: str
    """What ``z`` is (the colour bar's title)."""
    levels: int = 30


@dataclass(frozen=True)
class Panel:
    title: str
    x: Axis
    y: Axis
    series: tuple[Series, ...]
    contours: Contours | None = None
    square: bool = False
    """One unit is as long on both axes (x and y are coordinates)."""


@dataclass(frozen=True)
class Figure:
    panels: tuple[Panel, ...]
    caption: str = ""
    """Shown under the panels: what the short legend labels leave out."""
    columns: int = 3
    """Panels side by side, at most."""

    def with_caption(self, text: str) -> Figure:
        """The figure with ``text`` added to its caption."""
        return dataclasses.replace(self, caption="\n".join(line for line in (self.caption, text) if line))


def as_json(value: Any) -> Any:
    """A description (a ``Figure`` or any part of it) as JSON values: dataclasses become objects, tuples lists,
    a non-finite number ``null`` (a gap)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    if dataclasses.is_dataclass(value):
        return {field.name: as_json(getattr(value, field.name)) for field in dataclasses.fields(value)}
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def metric_points(job: Plotted, key: str) -> tuple[Point, ...]:
    """(step, value) for each recorded step where the metric is a number."""
    return tuple((step, values[key]) for step, values in job.metrics if is_number(values.get(key)))


def numeric_keys(jobs: Sequence[Plotted]) -> list[str]:
    """The metrics that are numbers somewhere, in the order they first appear."""
    return list(dict.fromkeys(key for job in jobs for _step, values in job.metrics for key, value in values.items()
                              if is_number(value)))


def metrics_figure(jobs: Sequence[Plotted], step_name: str = "step") -> Figure:
    """The default figure: one panel per numeric metric, each job a line against the step."""
    return Figure(tuple(Panel(key, Axis(step_name), Axis(key), tuple(
        Series(job.label, metric_points(job, key), group, marker="circle") for group, job in enumerate(jobs)))
        for key in numeric_keys(jobs)))


@dataclass(frozen=True)
class Trial:
    """One trial of a search (a study's, or a grid sweep's member): its parameters and objective value (a
    pruned trial's: the last it reported)."""

    number: int
    params: Mapping[str, Any]
    value: float | None
    pruned: bool = False


def best_so_far(trials: Sequence[Trial], direction: Literal["min", "max"]) -> tuple[Point, ...]:
    """(trial number, the best value of the unpruned trials up to it), from the first with a value."""
    pick = min if direction == "min" else max
    best: float | None = None
    found = []
    for trial in trials:
        if trial.value is not None and not trial.pruned:
            best = trial.value if best is None else pick(best, trial.value)
        if best is not None:
            found.append((float(trial.number), best))
    return tuple(found)


def trial_marks(trials: Sequence[Trial], x: Any) -> tuple[Series, Series]:
    """The trials as marks at (``x(trial)``, value): ended ones as circles, pruned ones as crosses."""
    ended = tuple((x(t), t.value) for t in trials if t.value is not None and not t.pruned and is_number(x(t)))
    pruned = tuple((x(t), t.value) for t in trials if t.value is not None and t.pruned and is_number(x(t)))
    return (Series("trials", ended, 0, line="none", marker="circle"),
            Series("pruned (last value)", pruned, 1, line="none", marker="cross"))


def search_figure(trials: Sequence[Trial], objective: str, direction: Literal["min", "max"],
                  params: Sequence[tuple[str, bool]]) -> Figure:
    """A search's panels: the best value so far against the trial number, and the objective against each
    searched parameter (``params``: its name and whether its axis is logarithmic), pruned trials marked."""
    history = Panel(f"best {objective} so far", Axis("trial", ticks="integer"), Axis(objective), (
        *trial_marks(trials, lambda t: t.number), Series(f"best ({direction})", best_so_far(trials, direction), 2)))
    scatters = tuple(Panel(f"{objective} against {name}", Axis(name, scale="log" if log else "linear"), Axis(objective),
                           trial_marks(trials, lambda t, name=name: t.params.get(name)))
                     for name, log in params)
    return Figure((history, *scatters), columns=3)

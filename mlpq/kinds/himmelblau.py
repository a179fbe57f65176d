"""The ``himmelblau`` kind: minimise Himmelblau's function from one or many start points.

The function itself lives here, torch-free: the job code evaluates it on tensors, the figure on floats.
"""

from __future__ import annotations

import functools
import math
import random
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from mlpq.figures import Axis, Contours, Figure, Panel, Plotted, Point, Series
from mlpq.kinds import Kind
from mlpq.kinds.spec import JobSpec, LearningRate, Momentum

Coordinate = Annotated[float, Field(ge=-1000, le=1000)]
Optimizer = Literal["adam", "adamw", "sgd", "rmsprop", "adagrad"]
OPTIMIZERS: tuple[str, ...] = typing.get_args(Optimizer)
"""The optimisers a job may use: torch.optim's classes of these names (lower-cased), with their defaults."""
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")
MINIMA: tuple[Point, ...] = (
    (3.0, 2.0),
    (-2.805118, 3.131312),
    (-3.779310, -3.283186),
    (3.584428, -1.848126),
)
DEFAULT_START = (0.0, 0.0)
GRID_LIMIT = 6.0
"""A grid, and random starts, cover [−GRID_LIMIT, GRID_LIMIT]² (a grid with both edges included); so does the
figure."""
STARTS_SHOWN = 64
"""``mlpq show`` lists each start's end point up to this many starts."""
CONTOUR_TICKS = 121
"""The figure's contour grid: this many values of f along each axis."""


def himmelblau(x: Any, y: Any) -> Any:
    """f(x, y) = (x² + y − 11)² + (x + y² − 7)², of floats or elementwise of torch tensors.

    Written as the tutorial writes it: autograd rounds the gradient of this form as
    ``mlpq.models.himmelblau_fast`` does by hand.
    """
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def grid_points(n: int) -> list[tuple[float, float]]:
    """An n×n grid over [−GRID_LIMIT, GRID_LIMIT]², x varying slowest."""
    ticks = [-GRID_LIMIT + 2 * GRID_LIMIT * i / (n - 1) for i in range(n)]
    return [(x, y) for x in ticks for y in ticks]


def random_points(n: int, seed: int) -> list[tuple[float, float]]:
    """n points drawn uniformly from [−GRID_LIMIT, GRID_LIMIT]², the same for the same seed."""
    draw = random.Random(seed).uniform
    return [(draw(-GRID_LIMIT, GRID_LIMIT), draw(-GRID_LIMIT, GRID_LIMIT)) for _ in range(n)]


class HimmelblauSpec(JobSpec):
    """Minimise Himmelblau's function from start points, an n×n grid of them, or n drawn from the seed."""

    starts: list[tuple[Coordinate, Coordinate]] | None = Field(
        default=None, min_length=1, max_length=4096, description="Start point X,Y (repeatable).",
        json_schema_extra={"option": "start", "default_help": "0,0"})
    grid: Annotated[int, Field(ge=2, le=64)] | None = Field(
        default=None, description="Start from an N×N grid over [-6,6]² instead.")
    random_starts: Annotated[int, Field(ge=1, le=4096)] | None = Field(
        default=None, description="Start from N points drawn from [-6,6]² with the seed instead.")
    optimizer: Optimizer = Field(default="adam", description="The torch.optim optimiser.")
    lr: LearningRate = Field(default=1e-3, description="Learning rate.")
    momentum: Momentum = Field(default=0.0, description="For sgd and rmsprop.")
    steps: Annotated[int, Field(ge=1, le=1_000_000)] = Field(default=20_000, description="Optimiser steps.")
    log_every: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=2_000, description="Record the points every N steps.")

    @model_validator(mode="before")
    @classmethod
    def _drop_default_start(cls, values: Any) -> Any:
        """A grid or random-start job stored by an older mlpq carries the default start: it never ran, drop it."""
        if isinstance(values, Mapping) and (values.get("grid") is not None or values.get("random_starts") is not None):
            starts = values.get("starts")
            if starts is not None and [tuple(point) for point in starts] == [DEFAULT_START]:
                return {key: value for key, value in values.items() if key != "starts"}
        return values

    @model_validator(mode="after")
    def _check_combination(self) -> HimmelblauSpec:
        if self.momentum and self.optimizer not in MOMENTUM_OPTIMIZERS:
            raise ValueError(f"momentum applies to {' and '.join(MOMENTUM_OPTIMIZERS)} only")
        chosen = [self.starts is not None, self.grid is not None, self.random_starts is not None]
        if sum(chosen) > 1:
            raise ValueError("give only one of start points, a grid and random starts")
        return self

    def start_points(self) -> list[tuple[float, float]]:
        """The points the job starts from: the grid's, the drawn ones, ``starts``, or the origin."""
        if self.grid is not None:
            return grid_points(self.grid)
        if self.random_starts is not None:
            return random_points(self.random_starts, self.seed)
        return list(self.starts or [DEFAULT_START])


def starts_text(starts: Sequence[Mapping[str, Any]]) -> str:
    """Each start's end point, f there and its nearest minimum, one per line (``mlpq show``)."""
    lines = [f"({s['start'][0]:g}, {s['start'][1]:g}) → ({s['x']:.4f}, {s['y']:.4f}) f={s['f']:.3g}, "
             f"nearest minimum ({s['nearest_minimum'][0]:g}, {s['nearest_minimum'][1]:g}) at {s['distance']:.3g}"
             for s in starts[:STARTS_SHOWN]]
    if len(starts) > STARTS_SHOWN:
        lines.append(f"… and {len(starts) - STARTS_SHOWN} more (--json lists them all)")
    return "\n".join([f"{len(starts)}", *lines]).replace("\n", "\n    ")


@functools.cache
def contours() -> Contours:
    """log10(1 + f) over the figure's square."""
    ticks = tuple(-GRID_LIMIT + 2 * GRID_LIMIT * i / (CONTOUR_TICKS - 1) for i in range(CONTOUR_TICKS))
    return Contours(ticks, ticks, tuple(tuple(round(math.log10(1 + himmelblau(x, y)), 4) for x in ticks)
                                        for y in ticks), "log10(1 + f)")


def end_points(job: Plotted) -> tuple[Point, ...]:
    return tuple((s["x"], s["y"]) for s in (job.result or {}).get("starts", []))


def paths(job: Plotted, ends: Sequence[Point]) -> list[tuple[Point, ...]]:
    """Each start's path through the recorded points, ending at its end point; none without ``points``."""
    recorded = [values["points"] for _step, values in job.metrics if "points" in values]
    walks = [tuple((x, y) for x, y, _f in per_start) for per_start in zip(*recorded)]
    return [walk + (end,) for walk, end in zip(walks, ends)] if len(ends) == len(walks) else walks


def job_series(job: Plotted, group: int) -> list[Series]:
    """A job's paths (one legend entry), its starts as circles and its end points as crosses."""
    ends = end_points(job)
    walks = paths(job, ends)
    drawn = [Series(job.label, walk, group, legend=number == 0) for number, walk in enumerate(walks)]
    if walks:
        drawn.append(Series(f"{job.label} starts", tuple(walk[0] for walk in walks), group, line="none",
                            marker="open-circle", legend=False))
    if ends:  # the job's legend entry when it recorded no paths
        drawn.append(Series(f"{job.label} end points" if walks else job.label, ends, group, line="none",
                            marker="cross", legend=not walks))
    return drawn


def figure(jobs: Sequence[Plotted]) -> Figure:
    """Each start's path over the contours of log10(1 + f), the four minima starred."""
    drawn = [series for group, job in enumerate(jobs) for series in job_series(job, group)]
    drawn.append(Series("minima", MINIMA, None, line="none", marker="star"))
    square = (-GRID_LIMIT, GRID_LIMIT)
    return Figure((Panel("Himmelblau: f(x, y) = (x² + y − 11)² + (x + y² − 7)²", Axis("x", square), Axis("y", square),
                         tuple(drawn), contours(), square=True),))


KIND = Kind(
    name="himmelblau",
    spec=HimmelblauSpec,
    runner="mlpq.models.himmelblau:run",
    help="""Minimise Himmelblau's function f(x,y)=(x²+y−11)²+(x+y²−7)².

    All start points (--start, --grid or --random-starts) run in one job; comma lists on the
    other options sweep.

    \b
    Example:
      mlpq submit himmelblau --start 4,0 --start -4,0 --optimizer adam --wait
      mlpq submit himmelblau --grid 32 --wait
      mlpq submit himmelblau --random-starts 100 --seed 7
      mlpq submit himmelblau --optimizer adam,sgd --lr 0.001,0.01
    """,
    step_name="step",
    steps_field="steps",
    default_timeout_s=600,
    result_fields=("f", "distance", "minima_found"),
    result_formats=(("starts", starts_text),),
    progress_fields=(("f_best", "f {:.4g}"),),
    figure=figure,
    best=("f", "min"),
)

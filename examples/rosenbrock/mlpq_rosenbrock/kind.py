"""The ``rosenbrock`` kind's declaration: its spec, its function and how mlpq shows it (no torch import here)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlpq.figures import Axis, Contours, Figure, Panel, Plotted, Series, metric_points
from mlpq.kinds import Kind
from mlpq.kinds.spec import Seed

X_RANGE, Y_RANGE = (-2.0, 2.0), (-1.0, 3.0)
"""The square the figure shows, around the minimum at (1, 1)."""
CONTOUR_TICKS = 81


def rosenbrock(x: Any, y: Any) -> Any:
    """f(x, y) = (1 − x)² + 100·(y − x²)², of floats or of torch tensors."""
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


class RosenbrockSpec(BaseModel):
    """f(x, y) = (a − x)² + b·(y − x²)², minimised from (x0, y0)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    seed: Seed = Field(default=0, description="Random seed (for the jitter).")
    optimizer: Literal["adam", "sgd", "rmsprop", "lbfgs"] = Field(default="adam", description="torch.optim optimiser.")
    lr: Annotated[float, Field(gt=0, le=1)] = Field(default=0.01, description="Learning rate.")
    steps: Annotated[int, Field(ge=1, le=100_000)] = Field(default=2000, description="Optimiser steps.")
    x0: Annotated[float, Field(ge=-10, le=10)] = Field(default=-1.5, description="Start x.")
    y0: Annotated[float, Field(ge=-10, le=10)] = Field(default=2.0, description="Start y.")
    jitter: Annotated[float, Field(ge=0, le=1)] = Field(default=0.0, description="Random offset of the start.")


@functools.cache
def contours() -> Contours:
    """log10(1 + f) over the figure's square."""
    xs, ys = ([low + (high - low) * i / (CONTOUR_TICKS - 1) for i in range(CONTOUR_TICKS)]
              for low, high in (X_RANGE, Y_RANGE))
    return Contours(tuple(xs), tuple(ys), tuple(tuple(round(math.log10(1 + rosenbrock(x, y)), 4) for x in xs)
                                                for y in ys), "log10(1 + f)")


def figure(jobs: Sequence[Plotted]) -> Figure:
    """f per step (log scale), and each job's path through the points it reported over the contours."""
    values = tuple(Series(job.label, metric_points(job, "f"), group, marker="circle") for group, job in enumerate(jobs))
    paths = tuple(Series(job.label, tuple((v["x"], v["y"]) for _step, v in job.metrics if "x" in v and "y" in v),
                         group, marker="circle") for group, job in enumerate(jobs))
    minimum = Series("minimum", ((1.0, 1.0),), None, line="none", marker="star")
    return Figure((Panel("f per step", Axis("step"), Axis("f", scale="log"), values),
                   Panel("path to the minimum", Axis("x", X_RANGE), Axis("y", Y_RANGE), (*paths, minimum),
                         contours(), square=True)), columns=2)


KIND = Kind(
    name="rosenbrock",
    spec=RosenbrockSpec,
    runner="mlpq_rosenbrock.run:run",
    help="""Minimise Rosenbrock's function (a=1, b=100) with a torch.optim optimiser.

    \b
    Example:
      mlpq submit rosenbrock --optimizer adam,sgd --lr 0.001,0.01 --wait
    """,
    step_name="step",
    steps_field="steps",
    default_timeout_s=300,
    result_fields=("f", "x", "y"),
    progress_fields=(("f", "f {:.4g}"),),
    figure=figure,
    best=("f", "min"),
)

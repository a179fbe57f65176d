"""The ``rosenbrock`` kind's declaration: its spec and how mlpq shows it (no torch import here)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlpq.kinds import Kind
from mlpq.kinds.spec import Seed


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
    best=("f", "min"),
)

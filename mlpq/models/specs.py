"""Validated parameters of each job kind (no torch import)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Seed = Annotated[int, Field(ge=0, lt=2**32)]
LearningRate = Annotated[float, Field(gt=0, le=10)]
Momentum = Annotated[float, Field(ge=0, lt=1)]
Coordinate = Annotated[float, Field(ge=-1000, le=1000)]

HIMMELBLAU_OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")
DEFAULT_START = (0.0, 0.0)
GRID_LIMIT = 6.0
"""A grid covers [−GRID_LIMIT, GRID_LIMIT]² with both edges included."""


class JobSpec(BaseModel):
    """Common rules: unknown fields, NaN and infinity are rejected; specs are immutable."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    seed: Seed = 0


def grid_points(n: int) -> list[tuple[float, float]]:
    """An n×n grid over [−GRID_LIMIT, GRID_LIMIT]², x varying slowest."""
    ticks = [-GRID_LIMIT + 2 * GRID_LIMIT * i / (n - 1) for i in range(n)]
    return [(x, y) for x in ticks for y in ticks]


class HimmelblauSpec(JobSpec):
    """Minimise Himmelblau's function from one or more start points, or from an n×n grid of them."""

    starts: list[tuple[Coordinate, Coordinate]] = Field(
        default=[DEFAULT_START], min_length=1, max_length=4096
    )
    grid: Annotated[int, Field(ge=2, le=64)] | None = None
    """Start from a grid×grid grid over [−6, 6]² instead; ``starts`` must then keep its default."""
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop", "adagrad"] = "adam"
    lr: LearningRate = 1e-3
    momentum: Momentum = 0.0
    steps: Annotated[int, Field(ge=1, le=1_000_000)] = 20_000
    log_every: Annotated[int, Field(ge=1, le=1_000_000)] = 2_000

    @model_validator(mode="after")
    def _check_combination(self) -> HimmelblauSpec:
        if self.momentum and self.optimizer not in MOMENTUM_OPTIMIZERS:
            raise ValueError(f"momentum applies to {' and '.join(MOMENTUM_OPTIMIZERS)} only")
        if self.grid is not None and self.starts != [DEFAULT_START]:
            raise ValueError("give either start points or a grid, not both")
        return self

    def start_points(self) -> list[tuple[float, float]]:
        """The points the job starts from: the grid's, or ``starts``."""
        return grid_points(self.grid) if self.grid is not None else list(self.starts)


class MnistSpec(JobSpec):
    """Train the tutorial's 784-200-200-10 MLP on MNIST."""

    epochs: Annotated[int, Field(ge=1, le=100)] = 10
    batch_size: Annotated[int, Field(ge=1, le=60_000)] = 200
    lr: LearningRate = 0.01
    momentum: Momentum = 0.0
    variant: Literal["module", "functional"] = "module"
    activation: Literal["relu", "leaky_relu", "tanh", "sigmoid", "gelu", "none"] = "relu"
    logits_relu: bool = False
    dataset: Literal["auto", "mnist", "mnist-sample"] = "auto"
    data_dir: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    cuda_graph: bool = False
    """On a GPU, capture the training step as a CUDA graph and replay it per batch (ignored on the CPU)."""

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and ("\0" in value or not PurePosixPath(value).is_absolute()):
            raise ValueError("must be an absolute path")
        return value

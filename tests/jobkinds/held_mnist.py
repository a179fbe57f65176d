"""A job kind for tests only: the ``mnist`` kind's training, held once at a gate right after the checkpoint of
epoch ``hold_after``, so that a test can kill its process at that known point however fast the machine is.

The training is ``mlpq.models.mnist.run`` itself, with the same spec fields (the gate's fields aside): its
checkpoints, its resuming and its ``model.pt`` are those of an ``mnist`` job of the same spec. Only the first
job to reach the gate waits there (``running`` does not exist yet); a later attempt runs straight through.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from mlpq.kinds import Kind
from mlpq.kinds.mnist import MnistSpec
from mlpq.models.context import FileSource, RunContext

GATE_FIELDS = {"hold_after", "until", "running"}
POLL_S = 0.05


class HeldMnistSpec(MnistSpec):
    hold_after: Annotated[int, Field(ge=1, le=100)] = Field(default=1, description="Hold after this epoch.")
    until: Annotated[str, Field(max_length=4096)] = Field(default="", description="Hold until this file exists.")
    running: Annotated[str, Field(max_length=4096)] = Field(
        default="", description="Once holding, write the process's id to this file.")


def run(spec: HeldMnistSpec, ctx: RunContext) -> dict[str, Any]:
    from mlpq.models import mnist

    kept = [0]

    def checkpoint(source: FileSource) -> None:
        ctx.checkpoint(source)  # stored, with the epochs it covers, before the job holds
        kept[0] += 1
        if kept[0] == spec.hold_after and not Path(spec.running).exists():
            hold(spec, ctx)

    trained = MnistSpec(**spec.model_dump(exclude=GATE_FIELDS))
    return mnist.run(trained, replace(ctx, checkpoint=checkpoint))


def hold(spec: HeldMnistSpec, ctx: RunContext) -> None:
    running = Path(spec.running)
    partial = running.with_name(f"{running.name}.{os.getpid()}")
    partial.write_text(str(os.getpid()))
    partial.replace(running)
    while not Path(spec.until).exists():
        ctx.check()
        time.sleep(POLL_S)


KIND = Kind(
    name="held-mnist",
    spec=HeldMnistSpec,
    runner="tests.jobkinds.held_mnist:run",
    help="""Test only: train like mnist, holding once at a gate after the checkpoint of an epoch.

    \b
    Example:
      mlpq submit held-mnist --dataset mnist-sample --epochs 3 --hold-after 1 --until /tmp/go --running /tmp/pid
    """,
    step_name="epoch",
    steps_field="epochs",
    default_timeout_s=600,
)

"""A job kind for tests and the GPU check only: report the process id, hold device memory, or raise.

Workers get it through ``sitecustomize`` beside this file: put this folder and the
repository on ``PYTHONPATH`` (see ``worker_env``). Nothing here imports torch at
import time, so a worker can still pin its GPU before torch is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from mlpq.models.context import RunContext
from mlpq.models.registry import KINDS, JobKind
from mlpq.models.specs import JobSpec

FOLDER = Path(__file__).resolve().parent
REPO = FOLDER.parents[1]


class FaultSpec(JobSpec):
    action: Literal["pid", "allocate", "raise"] = "pid"
    gib: Annotated[float, Field(ge=0, le=1e6)] = 0.0
    """``allocate``: GiB to allocate on the job's device."""
    message: Annotated[str, Field(max_length=2000)] = ""
    """``raise``: the message of the ``RuntimeError`` raised."""


def run(spec: FaultSpec, ctx: RunContext) -> dict[str, Any]:
    if spec.action == "allocate":
        import torch

        block = torch.empty(int(spec.gib * 2**30), dtype=torch.uint8, device=ctx.device)
        del block
    elif spec.action == "raise":
        raise RuntimeError(spec.message)
    return {"pid": os.getpid(), "headline": f"ran in process {os.getpid()}"}


KIND = JobKind(FaultSpec, "tests.jobkinds.fault_kind:run", step_name="step", default_timeout_s=120)


def register() -> None:
    KINDS.setdefault("fault", KIND)


def worker_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for an ``mlpq worker`` that knows the ``fault`` kind."""
    path = [str(FOLDER), str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}

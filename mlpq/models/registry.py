"""The job kinds mlpq knows: a plain dict from name to spec and runner."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlpq.models.context import RunContext
from mlpq.models.specs import HimmelblauSpec, JobSpec, MnistSpec

Runner = Callable[[Any, RunContext], dict[str, Any]]


@dataclass(frozen=True)
class JobKind:
    """A spec class, the ``module:function`` that runs it (imported on demand), what its steps
    are called, and how long a job may run unless its submitter says otherwise."""

    spec: type[JobSpec]
    runner: str
    step_name: str
    default_timeout_s: int

    def load_runner(self) -> Runner:
        module, _, name = self.runner.partition(":")
        return getattr(importlib.import_module(module), name)


MAX_TIMEOUT_S = 24 * 3600

KINDS: dict[str, JobKind] = {
    "himmelblau": JobKind(HimmelblauSpec, "mlpq.models.himmelblau:run", step_name="step", default_timeout_s=600),
    "mnist": JobKind(MnistSpec, "mlpq.models.mnist:run", step_name="epoch", default_timeout_s=3600),
}


def parse_spec(kind: str, params: Mapping[str, Any]) -> JobSpec:
    """Validate ``params`` for ``kind``; raises ``KeyError`` or pydantic's ``ValidationError``."""
    return KINDS[kind].spec.model_validate(params)

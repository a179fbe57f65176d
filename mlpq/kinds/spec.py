"""What every job spec shares, and the bounded number types kinds reuse (no torch import)."""

from __future__ import annotations

import hashlib
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from mlpq.kinds import SEED_BOUND

Seed = Annotated[int, Field(ge=0, lt=SEED_BOUND)]
LearningRate = Annotated[float, Field(gt=0, le=10)]
Momentum = Annotated[float, Field(ge=0, lt=1)]


class JobSpec(BaseModel):
    """Common rules: unknown fields, NaN and infinity are rejected; specs are immutable."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    seed: Seed = Field(default=0, description="Random seed.")
    """Absent from a request, a seed is drawn and stored (``Client.validate``); the option's help says so."""


def spec_digest(spec: BaseModel) -> str:
    """The SHA-256 (hex) of a validated spec's JSON: what a checkpoint records to be trusted by this spec only."""
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()

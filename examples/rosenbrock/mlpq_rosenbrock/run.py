"""The ``rosenbrock`` runner: the only module of this package that imports torch."""

from __future__ import annotations

from typing import Any

import torch

from mlpq.models.context import DivergedError, RunContext
from mlpq_rosenbrock.kind import RosenbrockSpec, rosenbrock

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop,
              "lbfgs": torch.optim.LBFGS}
REPORTS = 10


def run(spec: RosenbrockSpec, ctx: RunContext) -> dict[str, Any]:
    """Minimise from the (jittered) start, reporting f about ten times; returns the end point."""
    generator = torch.Generator().manual_seed(spec.seed)
    start = torch.tensor([spec.x0, spec.y0]) + spec.jitter * (2 * torch.rand(2, generator=generator) - 1)
    point = start.to(ctx.device).requires_grad_()
    optimizer = OPTIMIZERS[spec.optimizer]([point], lr=spec.lr)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = rosenbrock(point[0], point[1])
        value.backward()
        return value

    every = max(1, spec.steps // REPORTS)
    for step in range(1, spec.steps + 1):
        value = optimizer.step(closure)
        if not torch.isfinite(value):
            raise DivergedError(f"f is not finite at step {step}")
        if step % every == 0 or step == spec.steps:
            ctx.progress(step, {"f": float(value), "x": float(point[0]), "y": float(point[1])})
    end = point.detach().cpu()
    x, y = end.tolist()
    f = float(rosenbrock(end[0], end[1]))
    return {"x": x, "y": y, "f": f, "distance": ((x - 1) ** 2 + (y - 1) ** 2) ** 0.5,
            "headline": f"f={f:.3g} at ({x:.4f}, {y:.4f})"}

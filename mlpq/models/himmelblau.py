"""Himmelblau's function minimised with a torch optimiser, from many starts at once."""

from __future__ import annotations

import math
from typing import Any

import torch

from mlpq.models.context import DivergedError, RunContext
from mlpq.models.specs import HimmelblauSpec

MINIMA: tuple[tuple[float, float], ...] = (
    (3.0, 2.0),
    (-2.805118, 3.131312),
    (-3.779310, -3.283186),
    (3.584428, -1.848126),
)
FOUND_TOLERANCE = 1e-2
"""A start 'found' a minimum when it ends this close to it."""


def himmelblau(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f(x, y) = (x² + y − 11)² + (x + y² − 7)², elementwise."""
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def make_optimizer(spec: HimmelblauSpec, params: torch.Tensor) -> torch.optim.Optimizer:
    """The optimiser named in the spec, over one tensor of points."""
    if spec.optimizer == "adam":
        return torch.optim.Adam([params], lr=spec.lr)
    if spec.optimizer == "adamw":
        return torch.optim.AdamW([params], lr=spec.lr)
    if spec.optimizer == "sgd":
        return torch.optim.SGD([params], lr=spec.lr, momentum=spec.momentum)
    if spec.optimizer == "rmsprop":
        return torch.optim.RMSprop([params], lr=spec.lr, momentum=spec.momentum)
    return torch.optim.Adagrad([params], lr=spec.lr)


def nearest_minimum(x: float, y: float) -> tuple[tuple[float, float], float]:
    """The known minimum closest to (x, y) and the distance to it."""
    best = min(MINIMA, key=lambda m: math.dist(m, (x, y)))
    return best, math.dist(best, (x, y))


def optimise(spec: HimmelblauSpec, ctx: RunContext) -> torch.Tensor:
    """Run ``spec.steps`` optimiser steps on all starts together; returns the end points.

    The starts are independent: every supported optimiser works elementwise, so
    summing f over the starts gives each point exactly its own update.
    """
    points = torch.tensor(spec.starts, dtype=torch.float32, device=ctx.device, requires_grad=True)
    optimizer = make_optimizer(spec, points)
    for step in range(spec.steps):
        values = himmelblau(points[:, 0], points[:, 1])
        if step % spec.log_every == 0:
            report(step, points.detach(), values.detach(), ctx)  # the points f was evaluated at
        optimizer.zero_grad()
        values.sum().backward()
        optimizer.step()
    return points.detach()


def report(step: int, points: torch.Tensor, values: torch.Tensor, ctx: RunContext) -> None:
    """Send the points and their f to the progress callback; fail on a non-finite f."""
    rows = torch.cat([points, values[:, None]], dim=1).tolist()
    bad = sum(1 for row in rows if not all(math.isfinite(v) for v in row))
    if bad:
        raise DivergedError(f"f is not finite at step {step} for {bad} of {len(rows)} starts")
    ctx.progress(step, {"f_best": min(row[2] for row in rows), "points": rows})


def summarise(spec: HimmelblauSpec, end: torch.Tensor) -> dict[str, Any]:
    """The job's result: each start's end point and minimum, and the best of them."""
    values = himmelblau(end[:, 0], end[:, 1]).tolist()
    starts = []
    for (x0, y0), (x, y), f in zip(spec.starts, end.tolist(), values):
        if not all(math.isfinite(v) for v in (x, y, f)):
            raise DivergedError(f"f is not finite after {spec.steps} steps")
        minimum, distance = nearest_minimum(x, y)
        starts.append(
            {"start": [x0, y0], "x": x, "y": y, "f": f,
             "nearest_minimum": list(minimum), "distance": distance}
        )
    best = min(starts, key=lambda s: s["f"])
    found = {tuple(s["nearest_minimum"]) for s in starts if s["distance"] < FOUND_TOLERANCE}
    headline = f"f={best['f']:.3g} at ({best['x']:.4f}, {best['y']:.4f})"
    if len(starts) > 1:
        headline = f"{len(found)}/4 minima from {len(starts)} starts, best {headline}"
    return {
        "x": best["x"], "y": best["y"], "f": best["f"],
        "nearest_minimum": best["nearest_minimum"], "distance": best["distance"],
        "minima_found": len(found), "steps": spec.steps, "optimizer": spec.optimizer,
        "starts": starts, "headline": headline,
    }


def run(spec: HimmelblauSpec, ctx: RunContext) -> dict[str, Any]:
    """Minimise Himmelblau's function as the spec says."""
    torch.manual_seed(spec.seed)
    return summarise(spec, optimise(spec, ctx))

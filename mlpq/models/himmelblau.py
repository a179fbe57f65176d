"""Himmelblau's function minimised from many starts at once: torch.optim's iterates, without torch.optim."""

from __future__ import annotations

import math
from typing import Any

import torch

from mlpq.kinds.himmelblau import MINIMA, HimmelblauSpec
from mlpq.models import himmelblau_fast
from mlpq.models.context import CHECK_EVERY_STEPS, DivergedError, RunContext

FOUND_TOLERANCE = 1e-2
"""A start 'found' a minimum when it ends this close to it."""
SCALAR_MAX_STARTS = 6
"""Up to this many starts, stepping each in Python scalars beats one tensor op per update."""
POINTS_LOGGED_MAX = 64
"""Progress carries every start's [x, y, f] up to this many starts, else only f's best and mean."""


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


def optimise_reference(spec: HimmelblauSpec, ctx: RunContext) -> torch.Tensor:
    """The plain way, kept as the reference: autograd and a torch.optim optimiser; returns the end points.

    The starts are independent: every supported optimiser works elementwise, so
    summing f over the starts gives each point exactly its own update.
    """
    points = torch.tensor(spec.start_points(), dtype=torch.float32, device=ctx.device, requires_grad=True)
    optimizer = make_optimizer(spec, points)
    for step in range(spec.steps):
        if step % CHECK_EVERY_STEPS == 0:
            ctx.check()
        values = himmelblau(points[:, 0], points[:, 1])
        if step % spec.log_every == 0:
            report(step, torch.cat([points.detach(), values.detach()[:, None]], dim=1).tolist(), ctx)
        optimizer.zero_grad()
        values.sum().backward()
        optimizer.step()
    return points.detach().cpu()


def engine_for(spec: HimmelblauSpec) -> str:
    """``scalar`` (numpy float32 scalars in this process) for a few starts, else ``tensor`` on the job's device."""
    return "scalar" if len(spec.start_points()) <= SCALAR_MAX_STARTS else "tensor"


def optimise(spec: HimmelblauSpec, ctx: RunContext) -> torch.Tensor:
    """The fast path: torch.optim's iterates from hand-written update rules (see ``himmelblau_fast``)."""
    args = (spec.start_points(), spec.optimizer, spec.lr, spec.momentum, spec.steps, spec.log_every,
            lambda step, rows: report(step, rows, ctx))
    if engine_for(spec) == "scalar":
        ctx.report_compute("cpu (scalar engine)")
        return himmelblau_fast.minimise_scalar(*args, check=ctx.check)
    return himmelblau_fast.minimise_tensor(*args, device=ctx.device, check=ctx.check)


def report(step: int, rows: list[list[float]], ctx: RunContext) -> None:
    """Send f's best (and mean) and, for up to ``POINTS_LOGGED_MAX`` starts, every [x, y, f] to the progress
    callback; fail on a non-finite value."""
    bad = sum(1 for row in rows if not all(math.isfinite(v) for v in row))
    if bad:
        raise DivergedError(f"f is not finite at step {step} for {bad} of {len(rows)} starts")
    values = [row[2] for row in rows]
    metrics: dict[str, Any] = {"f_best": min(values)}
    if len(rows) > 1:
        metrics["f_mean"] = sum(values) / len(values)
    if len(rows) <= POINTS_LOGGED_MAX:
        metrics["points"] = rows
    ctx.progress(step, metrics)


def summarise(spec: HimmelblauSpec, end: torch.Tensor, engine: str) -> dict[str, Any]:
    """The job's result: each start's end point and minimum, and the best of them."""
    values = himmelblau(end[:, 0], end[:, 1]).tolist()
    starts = []
    for (x0, y0), (x, y), f in zip(spec.start_points(), end.tolist(), values):
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
        "minima_found": len(found), "steps": spec.steps, "optimizer": spec.optimizer, "engine": engine,
        "starts": starts, "headline": headline,
    }


def run(spec: HimmelblauSpec, ctx: RunContext) -> dict[str, Any]:
    """Minimise Himmelblau's function as the spec says."""
    return summarise(spec, optimise(spec, ctx), engine_for(spec))

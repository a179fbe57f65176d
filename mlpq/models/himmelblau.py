"""Himmelblau's function minimised from many starts at once: torch.optim's iterates, without torch.optim.

The fast engines (``himmelblau_fast``) repeat torch.optim's arithmetic. Before a process's first job on a
device they are run against torch.optim itself for every optimiser (``engine_agrees``); where either gives
other bits, jobs run torch.optim (``minimise_torch``) instead.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch

from mlpq.kinds.himmelblau import MINIMA, MOMENTUM_OPTIMIZERS, OPTIMIZERS, HimmelblauSpec, himmelblau
from mlpq.models import himmelblau_fast
from mlpq.models.context import CHECK_EVERY_STEPS, DivergedError, RunContext, StopCheck, keep_going

FOUND_TOLERANCE = 1e-2
"""A start 'found' a minimum when it ends this close to it."""
SCALAR_MAX_STARTS = 6
"""Up to this many starts, stepping each in Python scalars beats one tensor op per update."""
POINTS_LOGGED_MAX = 64
"""Progress carries every start's [x, y, f] up to this many starts, else only f's best and mean."""
CHECK_STARTS = ((0.0, 0.0), (1.0, 0.0), (-4.0, 0.0), (4.0, 0.0), (-2.5, 3.5), (2.0, -3.0))
CHECK_STEPS = 20
"""The self-check: every optimiser this many steps from these starts, on both engines and torch.optim."""
TORCH_OPTIM = "torch.optim"
log = logging.getLogger(__name__)


def torch_optimizer(name: str, params: torch.Tensor, lr: float, momentum: float) -> torch.optim.Optimizer:
    """torch.optim's optimiser of that name (``adamw``: ``AdamW``) over one tensor, with its defaults."""
    classes = {cls.__name__.lower(): cls for cls in vars(torch.optim).values()
               if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)}
    extra = {"momentum": momentum} if name in MOMENTUM_OPTIMIZERS else {}
    return classes[name]([params], lr=lr, **extra)


def minimise_torch(starts: Sequence[tuple[float, float]], optimizer: str, lr: float, momentum: float, steps: int,
                   log_every: int, on_log: himmelblau_fast.OnLog, device: str = "cpu",
                   check: StopCheck = keep_going) -> torch.Tensor:
    """The plain way: autograd and a torch.optim optimiser; returns the end points on the CPU.

    The starts are independent: every supported optimiser works elementwise, so
    summing f over the starts gives each point exactly its own update.
    """
    points = torch.tensor(starts, dtype=torch.float32, device=device, requires_grad=True)
    optimiser = torch_optimizer(optimizer, points, lr, momentum)
    if points.device.type == "cpu":
        cpu_only(optimiser)
    for step in range(steps):
        if step % CHECK_EVERY_STEPS == 0:
            check()
        values = himmelblau(points[:, 0], points[:, 1])
        if step % log_every == 0:
            on_log(step, torch.cat([points.detach(), values.detach()[:, None]], dim=1).tolist())
        optimiser.zero_grad()
        values.sum().backward()
        optimiser.step()
    return points.detach().cpu()


def cpu_only(optimiser: torch.optim.Optimizer) -> None:
    """Keep a CPU optimiser's ``step`` off the GPU: torch asks the accelerator's current stream whether a CUDA
    graph is being captured, which creates a CUDA context on a GPU host (hundreds of MiB of the worker's GPU
    for a job that never uses it). No capture can involve CPU tensors, so the question is skipped."""
    if hasattr(optimiser, "_accelerator_graph_capture_health_check"):
        optimiser._accelerator_graph_capture_health_check = lambda: None  # type: ignore[method-assign]


def check_cases() -> list[tuple[str, float, float]]:
    """(optimizer, lr, momentum): every optimiser, and again with momentum where it takes one."""
    return ([(name, 1e-3 if name == "sgd" else 0.05, 0.0) for name in OPTIMIZERS]
            + [(name, 1e-3, 0.9) for name in MOMENTUM_OPTIMIZERS])


def ignore(step: int, rows: list[list[float]]) -> None:
    pass


@functools.cache
def engine_agrees(engine: str, device: str) -> bool:
    """Whether the fast engine gives torch.optim's bits on ``device`` for every optimiser: checked once per
    process and device, a fraction of a second (a kernel that rounds otherwise shows within three steps)."""
    with himmelblau_fast.one_cpu_thread() if device == "cpu" else nullcontext():
        for optimizer, lr, momentum in check_cases():
            args = (CHECK_STARTS, optimizer, lr, momentum, CHECK_STEPS, CHECK_STEPS, ignore)
            fast = (himmelblau_fast.minimise_scalar(*args) if engine == "scalar"
                    else himmelblau_fast.minimise_tensor(*args, device=device))
            if not torch.equal(fast, minimise_torch(*args, device=device)):
                log.warning("the %s engine differs from torch.optim's %s on %s with this torch (%s): Himmelblau "
                            "jobs run torch.optim instead", engine, optimizer, device, torch.__version__)
                return False
    return True


def engine_for(spec: HimmelblauSpec, device: str) -> str:
    """``scalar`` (numpy float32 scalars in this process) for a few starts, else ``tensor`` on the job's device;
    ``torch.optim`` where that engine failed the self-check."""
    engine = "scalar" if len(spec.start_points()) <= SCALAR_MAX_STARTS else "tensor"
    return engine if engine_agrees(engine, "cpu" if engine == "scalar" else device) else TORCH_OPTIM


def optimise(spec: HimmelblauSpec, ctx: RunContext, engine: str) -> torch.Tensor:
    """The end points, from ``engine`` (see ``engine_for``)."""
    args = (spec.start_points(), spec.optimizer, spec.lr, spec.momentum, spec.steps, spec.log_every,
            lambda step, rows: report(step, rows, ctx))
    if engine == "scalar":
        ctx.report_compute("cpu (scalar engine)")
        return himmelblau_fast.minimise_scalar(*args, check=ctx.check)
    if engine == "tensor":
        return himmelblau_fast.minimise_tensor(*args, device=ctx.device, check=ctx.check)
    return minimise_torch(*args, device=ctx.device, check=ctx.check)


def nearest_minimum(x: float, y: float) -> tuple[tuple[float, float], float]:
    """The known minimum closest to (x, y) and the distance to it."""
    best = min(MINIMA, key=lambda m: math.dist(m, (x, y)))
    return best, math.dist(best, (x, y))


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
    engine = engine_for(spec, ctx.device)
    return summarise(spec, optimise(spec, ctx, engine), engine)

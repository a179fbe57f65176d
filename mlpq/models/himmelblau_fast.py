"""Himmelblau's gradient and torch.optim's update rules written out by hand: no autograd, no optimiser object.

Each rule repeats, operation for operation and in float32, what torch.optim's
single-tensor implementation does, so the iterates match it: bit for bit on the
CPU (checked in tests/models/test_himmelblau.py, and by ``himmelblau.engine_agrees``
before a process's first job). Three details make that so:
the gradient is rounded exactly like autograd's (2a·2x = 4·(a·x) and 2b are
exact scalings); torch's lerp, addcmul and ``add(alpha=)`` kernels round
``a·b + c`` once (FMA) on AVX2/AVX-512 builds, which is probed, not assumed; and
``sqrt`` is torch's own, whose float32 result is not always correctly rounded.

Two engines share the rules. ``scalar`` steps each start in numpy float32
scalars (about 20× faster than torch.optim for one start); ``tensor``
steps all starts as one (N, 2) float32 tensor on the job's device.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch

from mlpq.models.context import CHECK_EVERY_STEPS, StopCheck, keep_going

BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-8
ADAMW_WEIGHT_DECAY = 1e-2
RMSPROP_ALPHA, RMSPROP_EPS = 0.99, 1e-8
ADAGRAD_EPS = 1e-10
"""torch.optim's defaults, which ``himmelblau.torch_optimizer`` leaves in place."""

F32 = np.float32
Rows = list[list[float]]
OnLog = Callable[[int, Rows], None]
"""Called every ``log_every`` steps with [x, y, f] of every start, f evaluated at that point."""
Update = Callable[[Any, Any, int, list[Any]], Any]
"""(param, grad, step counted from 1, state updated in place) → the new param."""


@functools.cache
def torch_fuses_multiply_add() -> bool:
    """Whether torch's CPU kernels round a·b + c once: (1 + 2⁻¹²)² − (1 + 2⁻¹¹) is 2⁻²⁴ only then."""
    t = torch.tensor([1 + 2**-12])
    return torch.tensor([-(1 + 2**-11)]).addcmul_(t, t).item() != 0.0


class ScalarOps:
    """float32 arithmetic on numpy scalars; a fused a·b + c is done in float64, where a·b is exact."""

    def __init__(self) -> None:
        self.fused = torch_fuses_multiply_add()
        self._arg, self._out = torch.zeros(1), torch.zeros(1)
        self._arg_view, self._out_view = self._arg.numpy(), self._out.numpy()

    def fma(self, a: Any, b: Any, c: Any) -> Any:
        if self.fused:
            return F32(np.float64(F32(a)) * b + c)
        return F32(a) * b + c

    def lerp(self, start: Any, end: Any, weight: float) -> Any:
        return self.fma(weight, end - start, start)  # torch's form for weights below 0.5

    def sqrt(self, a: Any) -> Any:
        self._arg_view[0] = a
        torch.sqrt(self._arg, out=self._out)
        return self._out_view[0]


class TensorOps:
    """The same operations as torch kernels on whole tensors."""

    @staticmethod
    def fma(a: Any, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.add(c, b, alpha=a) if isinstance(a, float) else torch.addcmul(c, a, b)

    lerp = staticmethod(torch.lerp)
    sqrt = staticmethod(torch.sqrt)


Ops = ScalarOps | TensorOps


def make_update(optimizer: str, lr: float, momentum: float, ops: Ops) -> Update:
    """The update of torch.optim's ``optimizer`` with its defaults; the state holds two values per parameter."""
    if optimizer in ("adam", "adamw"):
        decay = 1 - lr * ADAMW_WEIGHT_DECAY if optimizer == "adamw" else None

        def adam(p: Any, g: Any, k: int, s: list[Any]) -> Any:
            if decay is not None:
                p = p * decay
            s[0] = ops.lerp(s[0], g, 1 - BETA1)
            s[1] = ops.fma((1 - BETA2) * g, g, s[1] * BETA2)
            denom = ops.sqrt(s[1]) / (1 - BETA2**k) ** 0.5 + ADAM_EPS
            return p + s[0] * -(lr / (1 - BETA1**k)) / denom
        return adam
    if optimizer == "sgd":
        def sgd(p: Any, g: Any, k: int, s: list[Any]) -> Any:
            if momentum:
                s[0] = g = s[0] * momentum + g  # a zero buffer times momentum, plus g, is g: torch's first step
            return ops.fma(-lr, g, p)
        return sgd
    if optimizer == "rmsprop":
        def rmsprop(p: Any, g: Any, k: int, s: list[Any]) -> Any:
            s[1] = ops.fma((1 - RMSPROP_ALPHA) * g, g, s[1] * RMSPROP_ALPHA)
            avg = ops.sqrt(s[1]) + RMSPROP_EPS
            if momentum:
                s[0] = s[0] * momentum + g / avg
                return ops.fma(-lr, s[0], p)
            return p + g * -lr / avg
        return rmsprop
    if optimizer == "adagrad":
        def adagrad(p: Any, g: Any, k: int, s: list[Any]) -> Any:
            s[1] = ops.fma(g, g, s[1])
            return p + g * -lr / (ops.sqrt(s[1]) + ADAGRAD_EPS)
        return adagrad
    raise ValueError(f"unknown optimizer {optimizer!r}")


def residuals(x: Any, y: Any) -> tuple[Any, Any]:
    """a = x² + y − 11 and b = x + y² − 7, so f = a² + b² (``kinds.himmelblau.himmelblau``, to the bit; x² as
    x·x, which numpy's float32 power is not)."""
    return x * x + y - 11, x + y * y - 7


def gradient(x: Any, y: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """(∂f/∂x, ∂f/∂y) = (4ax + 2b, 2a + 4by), rounded as autograd rounds them."""
    return a * x * 4 + b * 2, a * 2 + b * y * 4


@contextmanager
def one_cpu_thread() -> Iterator[None]:
    """Run torch's CPU ops on one thread: for a few thousand elements, waking a second costs more than it saves
    (MKL's float32 sqrt of 2,048 values takes ~80 µs on two threads, ~2 µs on one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def minimise_scalar(starts: Sequence[tuple[float, float]], optimizer: str, lr: float, momentum: float,
                    steps: int, log_every: int, on_log: OnLog, check: StopCheck = keep_going) -> torch.Tensor:
    """Step each start in numpy float32 scalars; returns the end points as an (N, 2) float32 tensor."""
    update = make_update(optimizer, lr, momentum, ScalarOps())
    points = [[F32(x), F32(y)] for x, y in starts]
    states = [([F32(0), F32(0)], [F32(0), F32(0)]) for _ in starts]
    with np.errstate(all="ignore"):  # overflow is reported as divergence, not as a warning
        for step in range(steps):
            if step % CHECK_EVERY_STEPS == 0:
                check()
            rows = [] if step % log_every == 0 else None
            for point, (state_x, state_y) in zip(points, states):
                x, y = point
                a, b = residuals(x, y)
                if rows is not None:
                    rows.append([float(x), float(y), float(a * a + b * b)])
                gx, gy = gradient(x, y, a, b)
                point[0] = update(x, gx, step + 1, state_x)
                point[1] = update(y, gy, step + 1, state_y)
            if rows is not None:
                on_log(step, rows)
    return torch.tensor([[float(x), float(y)] for x, y in points])


def minimise_tensor(starts: Sequence[tuple[float, float]], optimizer: str, lr: float, momentum: float,
                    steps: int, log_every: int, on_log: OnLog, device: str,
                    check: StopCheck = keep_going) -> torch.Tensor:
    """Step all starts as one (N, 2) float32 tensor on ``device``; returns the end points on the CPU."""
    update = make_update(optimizer, lr, momentum, TensorOps())
    with torch.inference_mode(), one_cpu_thread() if device == "cpu" else nullcontext():
        p = torch.tensor(starts, dtype=torch.float32, device=device)
        state = [torch.zeros_like(p), torch.zeros_like(p)]
        for step in range(steps):
            if step % CHECK_EVERY_STEPS == 0:
                check()
            x, y = p[:, 0], p[:, 1]
            a, b = residuals(x, y)
            if step % log_every == 0:
                on_log(step, torch.stack((x, y, a * a + b * b), dim=1).tolist())
            p = update(p, torch.stack(gradient(x, y, a, b), dim=1), step + 1, state)
        return p.cpu()

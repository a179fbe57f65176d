"""The tutorial's Himmelblau script, minus the 3-D plot: torch.optim.Adam(lr=1e-3) on a 2-element tensor, 20,000 steps.

    .venv/bin/python benchmarks/tutorial_himmelblau.py
"""

from __future__ import annotations

import torch


def himmelblau(x: torch.Tensor) -> torch.Tensor:
    return (x[0] ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2


def minimise(start: tuple[float, float] = (0.0, 0.0), steps: int = 20_000, verbose: bool = False) -> list[float]:
    """The tutorial's loop; with ``verbose``, its print every 2,000 steps."""
    x_y = torch.tensor(start, requires_grad=True)
    optimizer = torch.optim.Adam([x_y], lr=1e-3)
    for step in range(steps):
        pred = himmelblau(x_y)
        optimizer.zero_grad()
        pred.backward()
        optimizer.step()
        if verbose and step % 2000 == 0:
            print("step {}: x_y = {}, f(x) = {}".format(step, x_y.tolist(), pred.item()))
    return x_y.tolist()


if __name__ == "__main__":
    minimise(verbose=True)

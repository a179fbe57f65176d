"""Several MNIST jobs that differ only in lr, momentum and seed, trained together as one stacked model.

Each config keeps what it would have alone: its initialisation (built from its
seed exactly as ``mnist.run`` builds it), its batch order and its SGD state. The
K models' weights are stacked into (K, out, in) tensors so each layer is one
``baddbmm`` instead of K small matmuls, and the data is loaded once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from mlpq.models.context import DivergedError, RunContext
from mlpq.models.mlp import ACTIVATIONS, build_model, hidden_then_logits, layers
from mlpq.models.mnist import EVAL_BATCH, load_data, summarise
from mlpq.models.specs import MnistSpec

STACKED_FIELDS = {"lr", "momentum", "seed"}
"""What may differ between the configs of one stacked run."""


def stackable(specs: Sequence[MnistSpec]) -> bool:
    """Whether the specs differ in nothing but ``STACKED_FIELDS``."""
    shared = [spec.model_dump(exclude=STACKED_FIELDS) for spec in specs]
    return all(fields == shared[0] for fields in shared)


class StackedMLP:
    """K MLPs as one: per layer a (K, in, out) weight (transposed, so its gradient comes out contiguous) and a
    (K, out) bias, each config initialised from its seed."""

    def __init__(self, specs: Sequence[MnistSpec], device: str) -> None:
        per_config = []
        for spec in specs:
            torch.manual_seed(spec.seed)
            per_config.append(layers(build_model(spec.variant, spec.logits_relu, spec.activation)))
        self.weights = [torch.stack([c[i][0].detach().t() for c in per_config]).to(device).requires_grad_()
                        for i in range(len(per_config[0]))]
        self.biases = [torch.stack([c[i][1].detach() for c in per_config]).to(device).requires_grad_()
                       for i in range(len(per_config[0]))]
        self.logits_relu = specs[0].logits_relu
        self.activation = ACTIVATIONS[specs[0].activation]

    def parameters(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(K, B, 784) inputs, one batch per config → (K, B, 10) logits."""
        return hidden_then_logits(x, list(zip(self.weights, self.biases)),
                                  lambda x, w, b: torch.baddbmm(b.unsqueeze(1), x, w), self.activation,
                                  self.logits_relu)


class StackedSGD:
    """torch.optim.SGD's update (no dampening, no weight decay) with a learning rate and momentum per config."""

    def __init__(self, params: list[torch.Tensor], lrs: list[float], momenta: list[float]) -> None:
        self.params = params
        device = params[0].device
        self.neg_lr = torch.tensor([-lr for lr in lrs], device=device)
        self.momentum = torch.tensor(momenta, device=device)
        self.buffers = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p, buffer in zip(self.params, self.buffers):
            shape = (-1,) + (1,) * (p.dim() - 1)
            buffer.mul_(self.momentum.view(shape)).add_(p.grad)  # a zero buffer: the first step's is the gradient
            p.addcmul_(buffer, self.neg_lr.view(shape))


def per_config_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of (K, B, 10) logits against (K, B) targets, summed over each config's batch."""
    return F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(target.shape).sum(1)


def run_stacked(specs: Sequence[MnistSpec], contexts: Sequence[RunContext]) -> list[dict[str, Any] | Exception]:
    """Train every spec at once; returns, per spec, what ``mnist.run`` would return for it, or the exception that
    ended it (``DivergedError``, or whatever its progress callback raised: a cancel ends that config only).

    The specs must be ``stackable`` and the contexts share one device and data directory.
    """
    if len(specs) != len(contexts) or not stackable(specs) or len({(c.device, c.data_dir) for c in contexts}) != 1:
        raise ValueError("stacked configs must differ only in lr, momentum and seed, on one device and data dir")
    spec, device, k = specs[0], contexts[0].device, len(specs)
    data, load_seconds = load_data(spec, contexts[0])
    model = StackedMLP(specs, device)
    optimizer = StackedSGD(model.parameters(), [s.lr for s in specs], [s.momentum for s in specs])
    generators = [torch.Generator().manual_seed(s.seed) for s in specs]
    x, y, n = data.train_x, data.train_y, len(data.train_y)
    outcomes: dict[int, Exception] = {}
    history: list[list[dict[str, float]]] = [[] for _ in specs]
    began = time.perf_counter()
    for epoch in range(1, spec.epochs + 1):
        order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(device)
        total = torch.zeros(k, device=device)
        for start in range(0, n, spec.batch_size):
            batch = order[:, start:start + spec.batch_size]
            inputs = x.index_select(0, batch.flatten()).view(*batch.shape, -1)
            losses = per_config_loss(model(inputs), y[batch]) / batch.shape[1]
            optimizer.zero_grad()
            losses.sum().backward()
            optimizer.step()
            total += losses.detach() * batch.shape[1]
        train_losses = (total / n).tolist()
        test_losses, accuracies = evaluate(model, data.test_x, data.test_y, k)
        for i in range(k):
            if i in outcomes:
                continue
            if not math.isfinite(train_losses[i]):
                outcomes[i] = DivergedError(f"train loss is {train_losses[i]} in epoch {epoch} (lr {specs[i].lr})")
                continue
            metrics = {"train_loss": train_losses[i], "test_loss": test_losses[i], "test_accuracy": accuracies[i]}
            history[i].append(metrics)
            try:
                contexts[i].progress(epoch, metrics)
            except Exception as exc:  # this config's job was cancelled or lost; the others go on
                outcomes[i] = exc
    seconds = time.perf_counter() - began
    return [outcomes.get(i) or summarise(specs[i], data, history[i], load_seconds, seconds) for i in range(k)]


def evaluate(model: StackedMLP, x: torch.Tensor, y: torch.Tensor, k: int) -> tuple[list[float], list[float]]:
    """Each config's mean loss per sample and accuracy over (x, y), in large batches."""
    loss = torch.zeros(k, device=x.device)
    correct = torch.zeros(k, dtype=torch.long, device=x.device)
    with torch.inference_mode():
        for start in range(0, len(y), EVAL_BATCH):
            target = y[start:start + EVAL_BATCH].expand(k, -1)
            logits = model(x[start:start + EVAL_BATCH].expand(k, -1, -1))
            loss += per_config_loss(logits, target)
            correct += (logits.argmax(dim=2) == target).sum(1)
    return (loss / len(y)).tolist(), (correct / len(y)).tolist()

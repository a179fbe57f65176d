"""Train the MLP on MNIST: data held as tensors on the device, batches drawn by index from a seeded permutation."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mlpq.models import mnist_data
from mlpq.models.context import DivergedError, RunContext, StopCheck, keep_going
from mlpq.models.mlp import build_model
from mlpq.kinds.mnist import MnistSpec

EVAL_BATCH = 10_000


def train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
    batch_size: int, generator: torch.Generator, check: StopCheck = keep_going,
) -> float:
    """One pass over (x, y) in a seeded random order, calling ``check`` every batch; returns the mean train loss
    per sample."""
    model.train()
    order = torch.randperm(len(y), generator=generator).to(x.device)
    total = torch.zeros((), device=x.device)
    for start in range(0, len(y), batch_size):
        check()
        batch = order[start:start + batch_size]
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(batch)
    return total.item() / len(y)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean loss per sample and accuracy over (x, y), in large batches."""
    model.eval()
    loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    with torch.inference_mode():
        for start in range(0, len(y), EVAL_BATCH):
            logits = model(x[start:start + EVAL_BATCH])
            target = y[start:start + EVAL_BATCH]
            loss += F.cross_entropy(logits, target, reduction="sum")
            correct += (logits.argmax(dim=1) == target).sum()
    return loss.item() / len(y), correct.item() / len(y)


def load_data(spec: MnistSpec, ctx: RunContext) -> tuple[mnist_data.MnistData, float]:
    """The spec's dataset on the job's device, and the seconds loading it took."""
    began = time.perf_counter()
    data = mnist_data.load(spec.dataset, Path(spec.data_dir) if spec.data_dir else ctx.data_dir).to(ctx.device)
    return data, time.perf_counter() - began


def run(spec: MnistSpec, ctx: RunContext) -> dict[str, Any]:
    """Train for ``spec.epochs`` epochs, reporting train loss, test loss and accuracy per epoch."""
    torch.manual_seed(spec.seed)
    data, load_seconds = load_data(spec, ctx)
    model = build_model(spec.variant, spec.logits_relu, spec.activation).to(ctx.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum)
    generator = torch.Generator().manual_seed(spec.seed)
    began = time.perf_counter()
    epochs: list[dict[str, float]] = []
    for epoch in range(1, spec.epochs + 1):
        train_loss = train_epoch(model, optimizer, data.train_x, data.train_y, spec.batch_size, generator,
                                 ctx.check)
        if not math.isfinite(train_loss):
            raise DivergedError(f"train loss is {train_loss} in epoch {epoch} (lr {spec.lr})")
        test_loss, accuracy = evaluate(model, data.test_x, data.test_y)
        metrics = {"train_loss": train_loss, "test_loss": test_loss, "test_accuracy": accuracy}
        epochs.append(metrics)
        ctx.progress(epoch, metrics)
    return summarise(spec, data, epochs, load_seconds, time.perf_counter() - began)


def summarise(spec: MnistSpec, data: mnist_data.MnistData, epochs: list[dict[str, float]], load_seconds: float,
              train_seconds: float) -> dict[str, Any]:
    """The job's result: the last epoch's metrics, the data used and the time taken."""
    final = epochs[-1]
    return {
        **final,
        "dataset": data.name,
        "dataset_sizes": data.sizes(),
        "notice": data.notice,
        "epochs": spec.epochs,
        "load_seconds": load_seconds,
        "train_seconds": train_seconds,
        "samples_per_second": spec.epochs * len(data.train_y) / train_seconds,
        "headline": f"test accuracy {final['test_accuracy']:.2%} ({data.name})",
    }

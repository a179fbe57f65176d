"""Train the MLP on MNIST: data held as tensors on the device, batches drawn by index from a seeded permutation.

Nothing in the batch loop waits for the device: no ``.item()``, no host copy;
the loss is summed on the device and read once per epoch. The dataset stays on
the device between jobs of a warm worker process (``resident``). With
``cuda_graph`` on a GPU, the whole training step (gather, forward, backward,
SGD) is captured once as a CUDA graph and replayed per batch: one launch instead
of ~35 small kernels.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mlpq.models import mnist_data, mnist_state, resident
from mlpq.models.context import DivergedError, RunContext, StopCheck, keep_going
from mlpq.models.mlp import build_model
from mlpq.kinds.mnist import MnistSpec

EVAL_BATCH = 10_000
GRAPH_WARMUP_STEPS = 3
"""Eager steps on a side stream before capture (CUDA's rule), undone afterwards."""


class Trainer:
    """One SGD step on the rows ``idx`` of (x, y), adding the batch's summed loss to ``total`` on the device
    (in float64: an epoch at batch size 1 adds 60,000 losses, which float32 would round away).

    Gradients are zeroed in place, never freed, so they keep their addresses and
    a captured step and an eager one update the same tensors.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model, self.optimizer, self.x, self.y = model, optimizer, x, y
        self.total = torch.zeros((), dtype=torch.float64, device=x.device)

    def step(self, idx: torch.Tensor) -> None:
        loss = F.cross_entropy(self.model(self.x.index_select(0, idx)), self.y.index_select(0, idx))
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        self.optimizer.step()
        self.total.add_(loss.detach().double() * idx.numel())


class GraphedStep:
    """``trainer.step`` for batches of exactly ``batch_size`` rows, captured as a CUDA graph and replayed."""

    def __init__(self, trainer: Trainer, batch_size: int) -> None:
        device = trainer.x.device
        self.idx = torch.zeros(batch_size, dtype=torch.long, device=device)
        saved = (copy.deepcopy(trainer.model.state_dict()), trainer.total.clone())
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_STEPS):  # creates the gradients and momentum buffers the graph reuses
                trainer.step(self.idx)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            trainer.step(self.idx)
        undo_warmup(trainer, *saved)

    def __call__(self, idx: torch.Tensor) -> None:
        self.idx.copy_(idx)
        self.graph.replay()


def undo_warmup(trainer: Trainer, weights: dict[str, torch.Tensor], total: torch.Tensor) -> None:
    """Put back the weights and loss the warm-up steps changed, in place, and zero the SGD momentum: the next
    step then computes exactly what the first eager step would (buffer = 0·momentum + grad = grad)."""
    with torch.no_grad():
        trainer.model.load_state_dict(weights)
        trainer.total.copy_(total)
        for state in trainer.optimizer.state.values():
            if state.get("momentum_buffer") is not None:
                state["momentum_buffer"].zero_()


def train_epoch(trainer: Trainer, graphed: GraphedStep | None, batch_size: int, generator: torch.Generator,
                check: StopCheck = keep_going) -> float:
    """One pass over the data in a seeded random order, calling ``check`` every batch (it reads a flag: no
    device sync); returns the mean train loss per sample."""
    trainer.model.train()
    n = len(trainer.y)
    order = torch.randperm(n, generator=generator).to(trainer.x.device)
    trainer.total.zero_()
    for start in range(0, n, batch_size):
        check()
        idx = order[start:start + batch_size]
        if graphed is not None and idx.numel() == batch_size:
            graphed(idx)
        else:
            trainer.step(idx)
    return trainer.total.item() / n


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean loss per sample and accuracy over (x, y), in large batches."""
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    with torch.inference_mode():
        for start in range(0, len(y), EVAL_BATCH):
            logits = model(x[start:start + EVAL_BATCH])
            target = y[start:start + EVAL_BATCH]
            loss += F.cross_entropy(logits, target, reduction="sum").double()
            correct += (logits.argmax(dim=1) == target).sum()
    return loss.item() / len(y), correct.item() / len(y)


def load_data(spec: MnistSpec, ctx: RunContext) -> tuple[mnist_data.MnistData, float]:
    """The spec's dataset on the job's device, and the seconds loading it took.

    It is kept in this process for the next job that asks for the same one, unless
    it is ``auto``'s fallback to the sample (so a later download is picked up).
    """
    began = time.perf_counter()
    root = Path(spec.data_dir) if spec.data_dir else ctx.data_dir
    data, _ = resident.get(("mnist", spec.dataset, str(root), ctx.device),
                           lambda: mnist_data.load(spec.dataset, root).to(ctx.device),
                           keep=lambda data: data.notice is None)
    return data, time.perf_counter() - began


def uses_graph(spec: MnistSpec, device: str, train_size: int) -> bool:
    """Capture the step only when asked, on a GPU, and when at least one batch is full."""
    return spec.cuda_graph and device.startswith("cuda") and spec.batch_size <= train_size


def run(spec: MnistSpec, ctx: RunContext) -> dict[str, Any]:
    """Train for ``spec.epochs`` epochs, reporting train loss, test loss and accuracy per epoch, and keep the
    trained weights as ``model.pt``.

    After every epoch but the last the job's state is checkpointed (``mnist_state``); an attempt given one in
    ``ctx.resumed`` restores it and goes on with the next epoch, to the very weights of an uninterrupted run.
    Training (with the CUDA graph's capture) and evaluation are timed apart; each ends by reading a value from
    the device, so the time of each includes its device work.
    """
    torch.manual_seed(spec.seed)
    data, load_seconds = load_data(spec, ctx)
    model = build_model(spec.variant, spec.logits_relu, spec.activation).to(ctx.device)
    if spec.init_from is not None and spec.init_sha256 is not None:
        path = ctx.fetch_artifact(spec.init_from, mnist_state.MODEL_FILE, spec.init_sha256)
        mnist_state.init_weights(path, spec.init_sha256, model, ctx.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum)
    generator = torch.Generator().manual_seed(spec.seed)
    began = time.perf_counter()
    trainer = Trainer(model, optimizer, data.train_x, data.train_y)
    graphed = GraphedStep(trainer, spec.batch_size) if uses_graph(spec, ctx.device, len(data.train_y)) else None
    done = mnist_state.Progress(load_seconds, train_seconds=time.perf_counter() - began)
    refused = mnist_state.resume(ctx.resumed, spec, model, optimizer, generator, ctx.device, done)
    for epoch in range(len(done.epochs) + 1, spec.epochs + 1):
        began = time.perf_counter()
        train_loss = train_epoch(trainer, graphed, spec.batch_size, generator, ctx.check)
        done.train_seconds += time.perf_counter() - began
        if not math.isfinite(train_loss):
            raise DivergedError(f"train loss is {train_loss} in epoch {epoch} (lr {spec.lr})")
        began = time.perf_counter()
        test_loss, accuracy = evaluate(model, data.test_x, data.test_y)
        done.eval_seconds += time.perf_counter() - began
        metrics = {"train_loss": train_loss, "test_loss": test_loss, "test_accuracy": accuracy}
        done.epochs.append(metrics)
        ctx.progress(epoch, metrics)
        if epoch < spec.epochs:
            ctx.checkpoint(mnist_state.checkpoint(spec, model, optimizer, generator, done))
    stored = ctx.save_artifact(mnist_state.MODEL_FILE, mnist_state.model_file(model))
    notices = [text for text in (data.notice, refused) if text]
    return {**summarise(spec, data, done, graphed is not None, "; ".join(notices) or None),
            **mnist_state.model_result(stored)}


def summarise(spec: MnistSpec, data: mnist_data.MnistData, done: mnist_state.Progress, cuda_graph: bool = False,
              notice: str | None = None) -> dict[str, Any]:
    """The job's result: the last epoch's metrics, the data used and the time taken (``samples_per_second``:
    training samples per second of training, evaluation apart; summed over the attempts a resumed job took)."""
    final = done.epochs[-1]
    return {
        **final,
        "dataset": data.name,
        "dataset_sizes": data.sizes(),
        "notice": notice,
        "epochs": spec.epochs,
        "load_seconds": done.load_seconds,
        "train_seconds": done.train_seconds,
        "eval_seconds": done.eval_seconds,
        "samples_per_second": spec.epochs * len(data.train_y) / done.train_seconds,
        "cuda_graph": cuda_graph,
        "headline": f"test accuracy {final['test_accuracy']:.2%} ({data.name})",
    }

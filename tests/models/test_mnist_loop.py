"""The MNIST training loop: the same losses as the tutorial's loop, no host round trip per batch, data kept per
process, and the CUDA-graph warm-up undone exactly (the capture itself needs a GPU: scripts/gpu-check.sh)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
import torch
import torch.nn.functional as F

from mlpq.models import mnist, mnist_data, resident
from mlpq.models.context import RunContext
from mlpq.models.mlp import build_model
from mlpq.kinds.mnist import MnistSpec
from tests.models.test_mnist import SAMPLE, sample_root  # noqa: F401 (fixture)

T = TypeVar("T")


@pytest.fixture(autouse=True)
def nothing_resident() -> None:
    resident.clear()


def context(root: Path, log: list[dict] | None = None) -> RunContext:
    return RunContext("cpu", lambda epoch, metrics: log.append(dict(metrics)) if log is not None else None, root)


def tutorial_losses(data: mnist_data.MnistData, spec: MnistSpec) -> list[float]:
    """The tutorial's loop (x[batch], zero_grad(), backward, step), same seed and batch order; mean loss per epoch."""
    torch.manual_seed(spec.seed)
    model = build_model(spec.variant, spec.logits_relu, spec.activation)
    optimizer = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum)
    generator = torch.Generator().manual_seed(spec.seed)
    losses = []
    for _ in range(spec.epochs):
        order, total = torch.randperm(len(data.train_y), generator=generator), 0.0
        for start in range(0, len(order), spec.batch_size):
            batch = order[start:start + spec.batch_size]
            loss = F.cross_entropy(model(data.train_x[batch]), data.train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(order))
    return losses


@pytest.mark.parametrize(("batch_size", "momentum"), [(200, 0.0), (300, 0.9)])  # 300: a ragged last batch
def test_the_loop_gives_the_tutorial_loops_losses(sample_root: Path, batch_size: int, momentum: float) -> None:
    spec = MnistSpec(dataset=SAMPLE, epochs=2, seed=3, batch_size=batch_size, momentum=momentum, lr=0.02)
    log: list[dict] = []
    mnist.run(spec, context(sample_root, log))
    expected = tutorial_losses(mnist_data.load(SAMPLE, sample_root), spec)
    assert [epoch["train_loss"] for epoch in log] == pytest.approx(expected, rel=1e-5)


def test_an_epochs_train_loss_is_summed_in_float64() -> None:
    """1,000 equal losses at batch size 1: summed in float32 their mean drifts from their value by ~3e-6."""
    x, y = torch.ones(1000, 4), torch.zeros(1000, dtype=torch.long)
    model = torch.nn.Linear(4, 3)
    trainer = mnist.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.0), x, y)  # lr 0: every loss the same
    with torch.no_grad():
        each = F.cross_entropy(model(x[:1]), y[:1]).item()
    assert mnist.train_epoch(trainer, None, 1, torch.Generator().manual_seed(0)) == pytest.approx(each, rel=1e-12)


def test_samples_per_second_counts_training_time_only(sample_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]

    def taking(seconds: float, step: Callable[..., T]) -> Callable[..., T]:
        def timed(*args: Any) -> T:
            clock[0] += seconds
            return step(*args)
        return timed

    monkeypatch.setattr(mnist, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(mnist, "train_epoch", taking(10.0, mnist.train_epoch))  # each epoch trains for 10 s
    monkeypatch.setattr(mnist, "evaluate", taking(100.0, mnist.evaluate))  # and evaluates for 100 s
    result = mnist.run(MnistSpec(dataset=SAMPLE, epochs=2, seed=1), context(sample_root))
    assert (result["train_seconds"], result["eval_seconds"]) == (20.0, 200.0)
    assert result["samples_per_second"] == 2 * 4000 / 20.0


def test_no_value_leaves_the_device_inside_the_batch_loop(sample_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = mnist_data.load(SAMPLE, sample_root)
    model = build_model("module", False)
    trainer = mnist.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), data.train_x, data.train_y)
    reads: list[str] = []
    for name in ("item", "tolist", "cpu", "numpy", "__float__", "__bool__", "__int__"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _n=name, _o=original, **k: (reads.append(_n),
                                                                                           _o(self, *a, **k))[1])
    mnist.train_epoch(trainer, None, 100, torch.Generator().manual_seed(0))  # 40 batches
    assert reads == ["item"]  # once per epoch, for the mean loss


def test_a_dataset_stays_in_the_process_between_jobs(sample_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real_load = mnist_data.load
    monkeypatch.setattr(mnist_data, "load", lambda name, root: (loads.append(name), real_load(name, root))[1])
    spec = MnistSpec(dataset=SAMPLE, epochs=1)
    first, _ = mnist.load_data(spec, context(sample_root))
    again, _ = mnist.load_data(spec, context(sample_root))
    assert loads == [SAMPLE] and again is first
    mnist.load_data(spec.model_copy(update={"data_dir": str(sample_root / "elsewhere")}), context(sample_root))
    mnist.load_data(spec, context(sample_root))
    assert loads == [SAMPLE] * 3  # another dataset replaced it: one is kept at a time


def test_autos_fallback_to_the_sample_is_not_kept(sample_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = mnist_data.load(SAMPLE, sample_root)
    fallback = mnist_data.MnistData(SAMPLE, sample.train_x, sample.train_y, sample.test_x, sample.test_y,
                                    notice=mnist_data.OFFLINE_NOTICE)
    loads: list[str] = []
    monkeypatch.setattr(mnist_data, "load", lambda name, root: (loads.append(name), fallback)[1])
    spec = MnistSpec(dataset="auto", epochs=1)
    mnist.load_data(spec, context(sample_root))
    mnist.load_data(spec, context(sample_root))
    assert loads == ["auto", "auto"]  # so MNIST fetched later is used by the next job


def test_cuda_graph_is_ignored_on_the_cpu(sample_root: Path) -> None:
    plain = mnist.run(MnistSpec(dataset=SAMPLE, epochs=1, seed=5), context(sample_root))
    asked = mnist.run(MnistSpec(dataset=SAMPLE, epochs=1, seed=5, cuda_graph=True), context(sample_root))
    assert asked["cuda_graph"] is False and asked["train_loss"] == plain["train_loss"]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_undoing_the_warmup_steps_restores_the_first_steps_result(sample_root: Path, momentum: float) -> None:
    """The graph's warm-up steps are undone in place; what follows matches training that never warmed up."""
    data = mnist_data.load(SAMPLE, sample_root)

    def trainer() -> mnist.Trainer:
        torch.manual_seed(0)
        model = build_model("module", False)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=momentum)
        return mnist.Trainer(model, optimizer, data.train_x, data.train_y)

    fresh, warmed = trainer(), trainer()
    saved = (copy.deepcopy(warmed.model.state_dict()), warmed.total.clone())
    addresses = [p.data_ptr() for p in warmed.model.parameters()]
    for _ in range(mnist.GRAPH_WARMUP_STEPS):
        warmed.step(torch.zeros(200, dtype=torch.long))
    mnist.undo_warmup(warmed, *saved)
    assert [p.data_ptr() for p in warmed.model.parameters()] == addresses  # restored in place, as a graph needs
    for start in range(0, 1000, 200):
        batch = torch.arange(start, start + 200)
        fresh.step(batch)
        warmed.step(batch)
    assert warmed.total.item() == fresh.total.item()
    for a, b in zip(fresh.model.parameters(), warmed.model.parameters()):
        assert torch.equal(a, b)

"""What an MNIST job keeps: its trained model (``model.pt``) and, after each epoch, a checkpoint to resume from.

A checkpoint is one ``torch.save``d dict of plain tensors, numbers and strings (it loads with
``weights_only=True``): the weights, the SGD momentum buffers, the batch-order generator, the epoch, the
metrics of every epoch so far and the seconds spent. Restoring copies into the existing tensors, so a captured
CUDA graph (which holds their addresses) goes on updating the same ones; the next epoch then computes exactly
what the uninterrupted run computed.
"""

from __future__ import annotations

import io
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlpq.kinds.mnist import MnistSpec
from mlpq.kinds.spec import spec_digest
from mlpq.models.context import JobError, StoredFile
from mlpq.redact import one_line

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
FORMAT = 1
"""The checkpoint layout's version: one of another version is not resumed from."""
REFUSED_NOTICE = "the checkpoint could not be used ({}); training started again from epoch 1"


class InitFromError(JobError):
    """The model a job was to start from cannot be used."""

    reason = "init-from"


@dataclass
class Progress:
    """What the epochs so far produced: each epoch's metrics and the seconds spent (summed over attempts)."""

    load_seconds: float
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    epochs: list[dict[str, float]] = field(default_factory=list)


def to_bytes(value: Any) -> bytes:
    """``torch.save`` of ``value`` in memory (identical values give identical bytes)."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def model_file(model: nn.Module) -> bytes:
    """The trained ``state_dict``, on the CPU, as ``model.pt``'s bytes."""
    return to_bytes({name: tensor.detach().cpu() for name, tensor in model.state_dict().items()})


def model_result(stored: StoredFile) -> dict[str, Any]:
    return {"model_sha256": stored.sha256, "model_bytes": stored.size}


def checkpoint(spec: MnistSpec, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
               progress: Progress) -> bytes:
    """The state after the last epoch of ``progress``."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    momentum = [optimizer.state[p].get("momentum_buffer") if p in optimizer.state else None for p in params]
    return to_bytes({
        "format": FORMAT, "spec": spec_digest(spec), "epoch": len(progress.epochs),
        "model": model.state_dict(), "momentum": momentum, "generator": generator.get_state(),
        "epochs": progress.epochs,
        "seconds": [progress.load_seconds, progress.train_seconds, progress.eval_seconds],
    })


def load_trusted(path: Path, device: str) -> Any:
    """``torch.load`` with ``weights_only`` (no code runs); raises ``ValueError`` for anything unreadable."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"unreadable: {one_line(str(exc), 200)}") from exc


def resume(path: Path | None, spec: MnistSpec, model: nn.Module, optimizer: torch.optim.Optimizer,
           generator: torch.Generator, device: str, progress: Progress) -> str | None:
    """Restore the checkpoint at ``path`` (if any) into the job's tensors, in place, and its epochs into
    ``progress``; returns a notice when it cannot be used (then nothing was changed: start from epoch 1)."""
    if path is None:
        return None
    try:
        state = load_trusted(path, device)
        check(state, spec)
        restore(state, model, optimizer, generator, progress)
    except ValueError as exc:
        log.warning("checkpoint not resumed from: %s", exc)
        return REFUSED_NOTICE.format(exc)
    log.info("resumed after epoch %d", len(progress.epochs))
    return None


def check(state: Any, spec: MnistSpec) -> None:
    """Raise ``ValueError`` unless ``state`` is a checkpoint of this spec, within its epochs."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError("not an mlpq MNIST checkpoint of this version")
    if state.get("spec") != spec_digest(spec):
        raise ValueError("it is from another spec")
    epochs = state.get("epochs")
    if not isinstance(epochs, list) or not 1 <= len(epochs) < spec.epochs or state.get("epoch") != len(epochs):
        raise ValueError("its epochs do not fit this job")
    seconds = state.get("seconds")
    if not isinstance(seconds, list) or len(seconds) != 3 or not all(isinstance(s, float) for s in seconds):
        raise ValueError("its timings are invalid")


def restore(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
            generator: torch.Generator, progress: Progress) -> None:
    """Copy ``state`` into the existing tensors; raises ``ValueError`` (before changing any) if it does not fit."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    weights, momentum = state.get("model"), state.get("momentum")
    current = model.state_dict()
    if (not isinstance(weights, dict) or weights.keys() != current.keys()
            or any(weights[k].shape != v.shape for k, v in current.items())
            or not isinstance(momentum, list) or len(momentum) != len(params)
            or any(m is not None and m.shape != p.shape for m, p in zip(momentum, params))):
        raise ValueError("its tensors do not fit this model")
    try:
        generator.set_state(state["generator"])
    except (RuntimeError, TypeError) as exc:
        raise ValueError("its batch-order generator state is invalid") from exc
    with torch.no_grad():
        for name, tensor in current.items():
            tensor.copy_(weights[name])
        for p, saved in zip(params, momentum):
            buffer = optimizer.state[p].get("momentum_buffer") if p in optimizer.state else None
            if saved is None:
                continue
            if buffer is None:
                optimizer.state[p]["momentum_buffer"] = saved.clone()
            else:
                buffer.copy_(saved)
    progress.load_seconds, progress.train_seconds, progress.eval_seconds = (
        progress.load_seconds + state["seconds"][0], *state["seconds"][1:])
    progress.epochs = [dict(epoch) for epoch in state["epochs"]]


def init_weights(path: Path, sha256: str, model: nn.Module, device: str) -> None:
    """Load ``model.pt`` at ``path`` (already verified against ``sha256``) into ``model``; raises
    ``InitFromError`` if it is not a state dict of this architecture."""
    try:
        weights = load_trusted(path, device)
        model.load_state_dict(weights)
    except (ValueError, RuntimeError, TypeError, AttributeError) as exc:
        raise InitFromError(f"model.pt ({sha256[:12]}) does not fit this model: {one_line(str(exc), 200)}") from exc

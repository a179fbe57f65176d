"""MNIST's checkpoints, in one process: a run resumed after any epoch ends with the uninterrupted run's very
weights; a checkpoint that does not verify is never trained on; ``model.pt`` loads in plain PyTorch; a job
starts from another's model. (The worker's side, with a killed process: tests/worker/test_resume.py.)"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from mlpq.kinds.mnist import MnistSpec
from mlpq.models import mnist, resident
from mlpq.models.context import FileSource, JobError, RunContext, StoredFile
from mlpq.models.mlp import build_model
from tests.models.test_mnist import SAMPLE, sample_root  # noqa: F401 (fixture)


@pytest.fixture(autouse=True)
def nothing_resident() -> None:
    resident.clear()


@dataclass
class Kept:
    """What a run handed its context: the epochs it reported, its checkpoints and its artifacts."""

    epochs: list[int] = field(default_factory=list)
    checkpoints: list[bytes] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    def context(self, root: Path, resumed: Path | None = None, **more: object) -> RunContext:
        def save(name: str, source: FileSource) -> StoredFile:
            data = source if isinstance(source, bytes) else source.read_bytes()
            self.files[name] = data
            return StoredFile(name, len(data), hashlib.sha256(data).hexdigest())

        def keep(source: FileSource) -> None:
            self.checkpoints.append(source if isinstance(source, bytes) else source.read_bytes())

        return RunContext("cpu", lambda epoch, _: self.epochs.append(epoch), root, save_artifact=save,
                          checkpoint=keep, resumed=resumed, **more)


SPEC = dict(dataset=SAMPLE, epochs=3, seed=5, lr=0.05)


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "checkpoint"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("momentum", [0.0, 0.9])  # 0.9: the SGD momentum buffers are restored too
def test_a_run_resumed_after_any_epoch_ends_with_the_same_weights(sample_root: Path, tmp_path: Path,
                                                                  momentum: float) -> None:
    spec = MnistSpec(**SPEC, momentum=momentum)
    whole = Kept()
    expected = mnist.run(spec, whole.context(sample_root))
    assert whole.epochs == [1, 2, 3] and len(whole.checkpoints) == 2  # none after the last epoch
    for k, state in enumerate(whole.checkpoints, start=1):
        resumed = Kept()
        result = mnist.run(spec, resumed.context(sample_root, write(tmp_path, state)))
        assert resumed.epochs == list(range(k + 1, 4))
        assert resumed.files["model.pt"] == whole.files["model.pt"]
        assert result["model_sha256"] == expected["model_sha256"] and result["notice"] is None
        assert {key: result[key] for key in ("train_loss", "test_loss", "test_accuracy")} == \
               {key: expected[key] for key in ("train_loss", "test_loss", "test_accuracy")}


def test_a_checkpoint_loads_without_running_code(sample_root: Path) -> None:
    whole = Kept()
    mnist.run(MnistSpec(**SPEC), whole.context(sample_root))
    state = torch.load(io.BytesIO(whole.checkpoints[0]), weights_only=True)
    assert state["epoch"] == 1 and len(state["epochs"]) == 1




@pytest.mark.parametrize("damage", ["garbage", "truncated", "other spec", "last epoch"])
def test_a_checkpoint_that_does_not_fit_is_never_trained_on(sample_root: Path, tmp_path: Path,
                                                            damage: str) -> None:
    spec = MnistSpec(**SPEC)
    whole = Kept()
    mnist.run(spec, whole.context(sample_root))
    other = Kept()
    mnist.run(MnistSpec(**{**SPEC, "epochs": 4}), other.context(sample_root))
    bad = {"garbage": b"not a checkpoint", "truncated": whole.checkpoints[1][:-100],
           "other spec": other.checkpoints[0], "last epoch": other.checkpoints[2]}[damage]
    again = Kept()
    result = mnist.run(spec, again.context(sample_root, write(tmp_path, bad)))
    assert again.epochs == [1, 2, 3]  # from the beginning
    assert again.files["model.pt"] == whole.files["model.pt"]
    assert result["notice"].startswith("the checkpoint could not be used (")
    assert result["notice"].endswith("); training started again from epoch 1")


def test_model_pt_is_the_trained_state_dict(sample_root: Path) -> None:
    kept = Kept()
    result = mnist.run(MnistSpec(**SPEC), kept.context(sample_root))
    data = kept.files["model.pt"]
    assert result["model_sha256"] == hashlib.sha256(data).hexdigest() and result["model_bytes"] == len(data)
    model = build_model("module", False, "relu")
    model.load_state_dict(torch.load(io.BytesIO(data), weights_only=True))
    x = torch.zeros(1, 784)
    assert model(x).shape == (1, 10)


def test_a_job_starts_from_another_jobs_model(sample_root: Path, tmp_path: Path) -> None:
    first = Kept()
    mnist.run(MnistSpec(**SPEC), first.context(sample_root))
    source = write(tmp_path, first.files["model.pt"])
    sha256 = hashlib.sha256(first.files["model.pt"]).hexdigest()
    asked: list[tuple[str, str, str]] = []

    def fetch(job_id: str, name: str, digest: str) -> Path:
        asked.append((job_id, name, digest))
        return source

    spec = MnistSpec(**{**SPEC, "epochs": 1}, init_from="a" * 32, init_sha256=sha256)
    started = Kept()
    result = mnist.run(spec, started.context(sample_root, fetch_artifact=fetch))
    fresh = mnist.run(MnistSpec(**{**SPEC, "epochs": 1}), Kept().context(sample_root))
    assert asked == [("a" * 32, "model.pt", sha256)]
    assert result["test_accuracy"] > fresh["test_accuracy"]  # 3 + 1 epochs beat 1


def test_a_model_of_another_architecture_fails_the_job(sample_root: Path, tmp_path: Path) -> None:
    first = Kept()
    mnist.run(MnistSpec(**{**SPEC, "epochs": 1}, variant="functional"), first.context(sample_root))
    source = write(tmp_path, first.files["model.pt"])
    spec = MnistSpec(**{**SPEC, "epochs": 1}, init_from="a" * 32, init_sha256="b" * 64)
    with pytest.raises(JobError, match="does not fit this model"):
        mnist.run(spec, Kept().context(sample_root, fetch_artifact=lambda *_: source))


def test_init_from_needs_its_sha256() -> None:
    with pytest.raises(ValueError, match="init_from and init_sha256 go together"):
        MnistSpec(init_from="a" * 32)

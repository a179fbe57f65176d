"""Train the tutorial's 784-200-200-10 MLP on the full MNIST: a plain PyTorch script.

By hand:        python examples/train_mnist.py --epochs 1
Through mlpq:   mlpq submit command --device cuda --param lr=0.01,0.05 -- \
                    python examples/train_mnist.py --lr {lr} --epochs 10

It runs on cuda when there is a GPU. Through mlpq it reports each epoch (``mlpq.job.report``), keeps a
checkpoint after each one and resumes from it on a new attempt, and leaves ``model.pt`` in
``$MLPQ_ARTIFACT_DIR`` (an artifact of the job); by hand ``mlpq.job`` does nothing and ``model.pt`` lands in
the working directory. MNIST's raw IDX files are read from ``<data dir>/MNIST/raw`` (``mlpq data fetch`` puts
them there); ``--download`` lets torchvision fetch them instead.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

try:
    from mlpq import job
except ImportError:  # mlpq not installed where the script runs: nothing to report to
    job = None  # type: ignore[assignment]


def default_data_dir() -> str:
    """``$MLPQ_DATA_DIR`` (a worker sets it), else mlpq's own data directory, else ``./data``."""
    if os.environ.get("MLPQ_DATA_DIR"):
        return os.environ["MLPQ_DATA_DIR"]
    try:
        from mlpq.locations import default_data_dir as mlpq_data_dir

        return str(mlpq_data_dir())
    except ImportError:
        return "data"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--limit", type=int, help="Train on the first N images (and test on N/6): a quick run.")
    parser.add_argument("--download", action="store_true", help="Let torchvision download MNIST if missing.")
    return parser.parse_args()


class Net(nn.Module):
    """The tutorial's MLP: 784 → 200 → 200 → 10, ReLU between."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 200), nn.ReLU(),
                                   nn.Linear(200, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.view(-1, 784))


def loaders(args: argparse.Namespace) -> tuple[DataLoader, DataLoader]:
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    try:
        train = datasets.MNIST(args.data_dir, train=True, transform=to_tensor, download=args.download)
        test = datasets.MNIST(args.data_dir, train=False, transform=to_tensor, download=args.download)
    except RuntimeError as exc:
        raise SystemExit(f"MNIST is not in {args.data_dir}/MNIST/raw ({exc}): run 'mlpq data fetch', "
                         f"or pass --download or --data-dir") from None
    if args.limit:
        train, test = Subset(train, range(args.limit)), Subset(test, range(max(1, args.limit // 6)))
    return (DataLoader(train, batch_size=args.batch_size, shuffle=True),
            DataLoader(test, batch_size=1000))


def train(model: nn.Module, device: torch.device, data: DataLoader, optimizer: torch.optim.Optimizer) -> float:
    model.train()
    total, count = 0.0, 0
    for images, labels in data:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * len(labels), count + len(labels)
    return total / count


def test(model: nn.Module, device: torch.device, data: DataLoader) -> tuple[float, float]:
    model.eval()
    loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in data:
            images, labels = images.to(device), labels.to(device)
            output = model(images)
            loss += nn.functional.cross_entropy(output, labels, reduction="sum").item()
            correct += (output.argmax(1) == labels).sum().item()
            count += len(labels)
    return loss / count, correct / count


def main() -> None:
    args = arguments()
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = Net().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    checkpoint = Path(os.environ.get("MLPQ_CHECKPOINT_DIR", ".")) / "checkpoint.pt"
    first = 1
    if "MLPQ_CHECKPOINT_DIR" in os.environ and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        first = state["epoch"] + 1
        print(f"resumed after epoch {state['epoch']}", flush=True)
    train_data, test_data = loaders(args)
    accuracy = 0.0
    for epoch in range(first, args.epochs + 1):
        began = time.monotonic()
        train_loss = train(model, device, train_data, optimizer)
        test_loss, accuracy = test(model, device, test_data)
        print(f"epoch {epoch}: train loss {train_loss:.4f}, test loss {test_loss:.4f}, "
              f"accuracy {accuracy:.2%} ({time.monotonic() - began:.1f} s on {device})", flush=True)
        if job is not None:
            job.report(epoch, train_loss=train_loss, test_loss=test_loss, test_accuracy=accuracy)
        if "MLPQ_CHECKPOINT_DIR" in os.environ:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "rng": torch.get_rng_state(), "epoch": epoch}, checkpoint)
            if job is not None:
                job.checkpoint()
    torch.save(model.state_dict(), Path(os.environ.get("MLPQ_ARTIFACT_DIR", ".")) / "model.pt")
    if job is not None:
        job.result(test_accuracy=accuracy, epochs=args.epochs)


if __name__ == "__main__":
    main()

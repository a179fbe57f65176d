"""The README's "Using a trained model" script, run as it is on a model.pt downloaded from a real job."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import WorkerProcess, run_mlpq

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]
README = Path(__file__).parents[1] / "README.md"


def readme_script() -> str:
    section = README.read_text().split("## Using a trained model", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_script_gets_the_jobs_test_accuracy(cpu_worker: WorkerProcess, service_env: dict[str, str],
                                                       tmp_path: Path) -> None:
    submitted = run_mlpq("submit", "mnist", "--epochs", "2", "--dataset", "mnist-sample", "--seed", "3",
                         "--wait", "--json", env=service_env)
    assert submitted.returncode == 0, submitted.stderr + cpu_worker.log()
    job = json.loads(submitted.stdout)
    downloaded = run_mlpq("download", job["id"], "model.pt", "-o", str(tmp_path / "model.pt"), env=service_env)
    assert downloaded.returncode == 0, downloaded.stderr
    done = subprocess.run([sys.executable, "-c", readme_script(), service_env["MLPQ_DATA_DIR"], "mnist-sample"],
                          env=service_env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"test accuracy {job['result']['test_accuracy']}\n"

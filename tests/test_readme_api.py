"""The README's Python API script, run as it is against a real worker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]
README = Path(__file__).parents[1] / "README.md"


def readme_script() -> str:
    section = README.read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_script_prints_the_best_configuration(cpu_worker: WorkerProcess,
                                                         service_env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-c", readme_script()], env=service_env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr + cpu_worker.log()
    found = re.fullmatch(r"best: optimizer=(adam|sgd) lr=(0\.001|0\.01) f=(\S+)\n", done.stdout)
    assert found and float(found.group(3)) < 1.0, done.stdout

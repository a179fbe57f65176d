"""A kind from another package: examples/rosenbrock installed into this venv runs end to end through a real worker,
with no change to mlpq. Also: a worker without the kind's package fails the job, saying so."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import WorkerProcess, run_mlpq

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).parents[1] / "examples" / "rosenbrock"


@pytest.fixture
def rosenbrock_installed(tmp_path: Path) -> Iterator[None]:
    """pip-installs a copy of the example (offline: its build backend is already here; the copy keeps build
    files out of the checkout), uninstalls it afterwards."""
    source = shutil.copytree(EXAMPLE, tmp_path / "rosenbrock")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-build-isolation", "--no-deps", "--no-index", str(source)], check=True,
                   capture_output=True, timeout=300)
    yield
    subprocess.run([*pip, "uninstall", "-y", "mlpq-rosenbrock"], check=True, capture_output=True, timeout=120)


def mlpq_ok(env: dict[str, str], *args: str) -> str:
    done = run_mlpq(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_installed_kind_runs_end_to_end(rosenbrock_installed: None, cpu_worker: WorkerProcess,
                                           service_env: dict[str, str], tmp_path: Path) -> None:
    assert "rosenbrock" in mlpq_ok(service_env, "submit", "--help")
    assert run_mlpq("submit", "rosenbrock", "--lr", "2", env=service_env).returncode == 2  # bound from the spec

    one = json.loads(mlpq_ok(service_env, "submit", "rosenbrock", "--steps", "3000", "--lr", "0.02", "--wait",
                             "--json"))
    assert one["status"] == "succeeded" and one["kind"] == "rosenbrock", cpu_worker.log()
    assert one["result"]["f"] < 1e-3 and [m["step"] for m in one["metrics"]][-1] == 3000

    swept = json.loads(mlpq_ok(service_env, "submit", "rosenbrock", "--optimizer", "adam,rmsprop", "--steps", "200",
                               "--wait", "--json"))
    assert [job["status"] for job in swept["jobs"]] == ["succeeded", "succeeded"]
    sweep_id = swept["sweep_id"]

    assert "f=" in mlpq_ok(service_env, "results", "--kind", "rosenbrock")
    shown = mlpq_ok(service_env, "show", one["id"][:8])
    assert "kind      rosenbrock" in shown and "STEP" in shown
    compared = mlpq_ok(service_env, "compare", "--sweep", sweep_id[:8])
    assert "OPTIMIZER" in compared and "F" in compared.split("\n")[0].split() and "rmsprop" in compared
    plotted = mlpq_ok(service_env, "plot", *[job["id"] for job in swept["jobs"]], "-o", str(tmp_path / "r.png"))
    assert plotted.startswith(str(tmp_path / "r.png")) and (tmp_path / "r.png").stat().st_size > 10_000

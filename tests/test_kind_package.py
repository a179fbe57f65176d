"""A kind from another package: examples/rosenbrock installed runs end to end through a real worker, with no change
to mlpq. Also: a worker without the kind's package fails the job, saying so.

The package is installed into a folder of its own, which only this module's worker and CLI processes get on
their ``PYTHONPATH``: the venv is shared by every test process, and no other test sees the kind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.services import WorkerProcess, run_mlpq, start_worker

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).parents[1] / "examples" / "rosenbrock"


@pytest.fixture(scope="module")
def rosenbrock_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the example package as pip installs it, outside the venv (offline: its build backend is
    already here; the copy keeps build files out of the checkout)."""
    folder = tmp_path_factory.mktemp("rosenbrock")
    source = shutil.copytree(EXAMPLE, folder / "source")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-build-isolation", "--no-deps", "--no-index", "--target",
                    str(folder / "site"), str(source)], check=True, capture_output=True, timeout=300)
    return folder / "site"


def with_package(env: Mapping[str, str], site: Path) -> dict[str, str]:
    """``env`` for a process that finds the packages in ``site`` too."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, (str(site), env.get("PYTHONPATH"))))}


@pytest.fixture
def installed_env(service_env: dict[str, str], rosenbrock_site: Path) -> dict[str, str]:
    return with_package(service_env, rosenbrock_site)


@pytest.fixture
def rosenbrock_worker(installed_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    worker = start_worker(installed_env, tmp_path / "worker.log", "--device", "cpu")
    yield worker
    worker.stop()


def mlpq_ok(env: dict[str, str], *args: str) -> str:
    done = run_mlpq(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_installed_kind_runs_end_to_end(rosenbrock_worker: WorkerProcess, installed_env: dict[str, str],
                                           service_env: dict[str, str], tmp_path: Path) -> None:
    assert "rosenbrock" in mlpq_ok(installed_env, "submit", "--help")
    assert "rosenbrock" not in mlpq_ok(service_env, "submit", "--help")  # installed for these processes only
    assert run_mlpq("submit", "rosenbrock", "--lr", "2", env=installed_env).returncode == 2  # bound from the spec

    one = json.loads(mlpq_ok(installed_env, "submit", "rosenbrock", "--steps", "3000", "--lr", "0.02", "--wait",
                             "--json"))
    assert one["status"] == "succeeded" and one["kind"] == "rosenbrock", rosenbrock_worker.log()
    assert one["result"]["f"] < 1e-3 and [m["step"] for m in one["metrics"]][-1] == 3000

    swept = json.loads(mlpq_ok(installed_env, "submit", "rosenbrock", "--optimizer", "adam,rmsprop", "--steps",
                               "200", "--wait", "--json"))
    assert [job["status"] for job in swept["jobs"]] == ["succeeded", "succeeded"]
    sweep_id = swept["sweep_id"]

    assert "f=" in mlpq_ok(installed_env, "results", "--kind", "rosenbrock")
    shown = mlpq_ok(installed_env, "show", one["id"][:8])
    assert "kind      rosenbrock" in shown and "STEP" in shown
    compared = mlpq_ok(installed_env, "compare", "--sweep", sweep_id[:8])
    assert "OPTIMIZER" in compared and "F" in compared.split("\n")[0].split() and "rmsprop" in compared
    plotted = mlpq_ok(installed_env, "plot", *[job["id"] for job in swept["jobs"]], "-o", str(tmp_path / "r.png"))
    assert plotted.startswith(str(tmp_path / "r.png")) and (tmp_path / "r.png").stat().st_size > 10_000


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_worker_without_the_package_fails_the_job_saying_so(cpu_worker: WorkerProcess,
                                                              installed_env: dict[str, str]) -> None:
    done = run_mlpq("submit", "rosenbrock", "--steps", "10", "--wait", "--json", env=installed_env)
    job = json.loads(done.stdout)
    assert done.returncode == 1 and job["status"] == "failed", done.stderr
    assert job["error"].startswith("unknown kind 'rosenbrock' on this worker"), job["error"]

"""The kinds registry finds a kind installed after the process read it: in the CLI's process, a worker, ``mlpq ui``.

"Installed" here is what pip leaves in a directory on ``sys.path``: a module and a
``*.dist-info`` folder whose ``entry_points.txt`` names the ``Kind`` (as
tests/jobkinds does for the ``fault`` kind); nothing is installed into the venv.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlpq import kinds
from mlpq.db.status import JobStatus
from tests.faults.helpers import finished, submit
from tests.services import run_mlpq, start_worker

MODULE = "mlpq_late_kind"
KIND_SOURCE = '''
from mlpq.kinds import Kind
from mlpq.kinds.spec import JobSpec


class LateSpec(JobSpec):
    """No parameters but the seed."""


def run(spec, ctx):
    return {"answer": 42, "headline": "installed late"}


KIND = Kind(name="late", spec=LateSpec, runner="mlpq_late_kind:run", help="A kind installed late.")
'''
LONG_AGO_S = 1_000_000_000
"""A modification time for a directory last changed long before the test (as a venv's site-packages is)."""


def install_late_kind(folder: Path) -> None:
    """Write what ``pip install --target folder`` of a package declaring the ``late`` kind would."""
    (folder / f"{MODULE}.py").write_text(KIND_SOURCE)
    info = folder / f"{MODULE}-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlpq-late-kind\nVersion: 0\n")
    (info / "entry_points.txt").write_text(f"[mlpq.kinds]\nlate = {MODULE}:KIND\n")


@pytest.fixture
def site_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty directory, last changed long ago; whatever the test puts on ``sys.path`` is taken off after."""
    folder = tmp_path / "site"
    folder.mkdir()
    os.utime(folder, (LONG_AGO_S, LONG_AGO_S))
    path_before = list(sys.path)
    yield folder
    sys.path[:] = path_before
    sys.modules.pop(MODULE, None)
    kinds.forget()


def test_a_kind_on_a_directory_added_to_the_path_after_the_registry_was_read_is_found(site_dir: Path) -> None:
    assert "late" not in kinds.names() and kinds.find("late") is None  # the registry is read, without it
    install_late_kind(site_dir)
    sys.path.insert(0, str(site_dir))
    assert kinds.get("late").name == "late" and "late" in kinds.names()


def test_a_kind_installed_into_a_directory_already_on_the_path_is_found(site_dir: Path) -> None:
    sys.path.insert(0, str(site_dir))
    assert kinds.find("late") is None  # read with the directory there, still empty
    install_late_kind(site_dir)
    assert kinds.get("late").runner == f"{MODULE}:run"


def test_the_web_ui_takes_a_kind_installed_after_it_started(site_dir: Path) -> None:
    from starlette.testclient import TestClient

    from mlpq.api_cli.api import Client
    from mlpq.config import Settings
    from mlpq.ui.app import create_app

    sys.path.insert(0, str(site_dir))
    ui = TestClient(create_app(Client(Settings.from_env()), allowed_hosts=["testserver"]), raise_server_exceptions=False)
    assert ui.get("/api/jobs?kind=late").status_code == 400  # not installed yet
    install_late_kind(site_dir)
    assert ui.get("/api/jobs?kind=late").json() == [] and "<option>late</option>" in ui.get("/jobs").text


def test_an_unknown_kind_stays_unknown(site_dir: Path) -> None:
    with pytest.raises(kinds.UnknownKindError, match="unknown kind 'quantum'"):
        kinds.get("quantum")


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_running_worker_runs_a_kind_installed_after_it_ran_a_job(
        site_dir: Path, service_env: dict[str, str], tmp_path: Path) -> None:
    path = os.pathsep.join(filter(None, [str(site_dir), service_env.get("PYTHONPATH")]))
    env = {**service_env, "PYTHONPATH": path}
    worker = start_worker(env, tmp_path / "worker.log", "--device", "cpu", "--concurrency", "1")
    try:
        first = finished(env, submit(env, "himmelblau", steps=10, log_every=5))  # its pool process reads the kinds
        assert first.status is JobStatus.SUCCEEDED, worker.log()
        install_late_kind(site_dir)
        done = run_mlpq("submit", "late", "--wait", "--json", env=env)  # a new CLI process: it reads them afresh
        late = json.loads(done.stdout)
        assert (late["status"], late["error"], late["result"]) == ("succeeded", None, {"answer": 42,
                                                                                      "headline": "installed late"})
    finally:
        worker.stop()

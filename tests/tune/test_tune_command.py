"""Tuning a user's own script (``mlpq tune command``) with a real command worker, on SQLite: each trial's job runs
the script with its ``{lr}`` filled in, its ``mlpq.job.report`` steps reach the pruner, which stops the worst,
and its ``mlpq.job.result`` is the trial's value. Each trial waits after step 1 until the test lets it go on, so
the pruner judges it at a known point."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlpq.db.status import JobStatus
from tests.faults import helpers
from tests.services import WorkerProcess, mlpq_command, start_worker

pytestmark = pytest.mark.integration

WAIT_S = 60
SCRIPT = '''
"""A made-up training run whose loss falls step by step and is least at lr 0.01. It keeps a checkpoint after
each step (which stores the step at once) and after step 1 waits until the file GATE/<its job id> exists."""
import math, os, sys, time
from pathlib import Path

from mlpq import job

lr = float(sys.argv[sys.argv.index("--lr") + 1])
release = Path(sys.argv[sys.argv.index("--gate") + 1], os.environ["MLPQ_JOB_ID"])
for step in range(4):
    loss = (math.log10(lr) + 2) ** 2 + 1 / (step + 1)
    job.report(step, loss=loss)
    Path(os.environ["MLPQ_CHECKPOINT_DIR"], "step").write_text(str(step))
    job.checkpoint()
    while step == 1 and not release.exists():
        time.sleep(0.05)
job.result(loss=loss)
'''


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def command_worker(env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    worker = start_worker({**env, "MLPQ_COMMAND_GRACE_SECONDS": "2"}, tmp_path / "worker.log", "--device", "cpu",
                          "--allow-commands")
    yield worker
    worker.stop()


def trial_job(env: dict[str, str], study_id: str, number: int) -> Any:
    """The study's ``number``-th job once it has stored its step 1, else ``None``."""
    jobs = sorted(helpers.client(env).list(sweep=study_id), key=lambda job: job.created_at)
    if len(jobs) <= number:
        return None
    view = helpers.client(env).get(jobs[number].id)
    return view if [m.step for m in view.metrics] == [0, 1] else None


def test_a_script_is_tuned_through_its_placeholder_and_its_worst_trial_pruned(
        env: dict[str, str], command_worker: WorkerProcess, tmp_path: Path) -> None:
    script, gates = tmp_path / "train.py", tmp_path / "gates"
    script.write_text(SCRIPT)
    gates.mkdir()
    program = [sys.executable, str(script), "--lr", "{lr}", "--gate", str(gates)]
    driver = subprocess.Popen(mlpq_command(
        "tune", "command", "--search", "lr=1e-4..1e-1:log", "--objective", "loss:min", "--trials", "4",
        "--parallel", "1", "--sampler", "random", "--pruner", "median", "--seed", "6", "--wait", "--json", "--",
        *program), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert driver.stderr is not None
        study_id = driver.stderr.readline().split()[1].rstrip(":")
        at_step_one = []
        for number in range(4):
            view = helpers.eventually(lambda: trial_job(env, study_id, number), WAIT_S, f"trial {number}'s step 1")
            at_step_one.append(view.metrics[1].values["loss"])
            if number < 3:
                (gates / view.job.id).touch()
        # the median rule, from the fourth trial on: --seed 6 draws it the worst at step 1
        assert at_step_one[3] > statistics.median(at_step_one[:3])
        out, err = driver.communicate(timeout=WAIT_S)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err
    study = json.loads(out)
    assert [t["state"] for t in study["trials"]] == ["complete", "complete", "complete", "pruned"]
    assert "trial 3 pruned at step 1 (loss " in err
    client = helpers.client(env)
    for trial in study["trials"]:
        view = client.get(trial["job_id"])
        lr = trial["params"]["lr"]
        assert view.job.params["argv"] == [sys.executable, str(script), "--lr", repr(lr), "--gate", str(gates)]
        assert view.job.params["values"] == {"lr": repr(lr)}
        if trial["state"] == "complete":
            assert view.job.status is JobStatus.SUCCEEDED and [m.step for m in view.metrics] == [0, 1, 2, 3]
            assert trial["value"] == view.job.result["loss"] == view.metrics[-1].values["loss"]
        else:
            assert view.job.status is JobStatus.PRUNED and [m.step for m in view.metrics] == [0, 1]
    assert study["best"]["value"] == min(t["value"] for t in study["trials"][:3])
    assert len(client.list(sweep=study_id)) == 4

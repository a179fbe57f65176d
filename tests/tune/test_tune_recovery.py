"""A trial whose worker dies is retried like any job, on SQLite and PostgreSQL: a second worker runs it again (a
script that keeps checkpoints resumes from its last), and the study counts it once, told its final value, each
step reported once, with no job submitted twice. Trials are held at a gate, so the worker dies at a known
point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from mlpq.api_cli import tune
from mlpq.db.status import JobStatus
from tests.faults import helpers
from tests.jobkinds.fault_kind import Gate
from tests.services import mlpq_command, start_worker

pytestmark = pytest.mark.integration

WAIT_S = 60
RESUMING_SCRIPT = '''
"""Four steps of a made-up loss, a checkpoint after each; it starts after the step its checkpoint holds, and
after step 1 waits until the file GATE/<its job id> exists."""
import os, sys, time
from pathlib import Path

from mlpq import job

kept = Path(os.environ["MLPQ_CHECKPOINT_DIR"], "step")
release = Path(sys.argv[2], os.environ["MLPQ_JOB_ID"])
start = int(kept.read_text()) + 1 if kept.exists() else 0
for step in range(start, 4):
    loss = float(sys.argv[1]) / (step + 1)
    job.report(step, loss=loss)
    kept.write_text(str(step))
    job.checkpoint()
    while step == 1 and not release.exists():
        time.sleep(0.05)
job.result(loss=loss, started_at=start)
'''


def trial_zero(env: dict[str, str], study_id: str) -> optuna.trial.FrozenTrial:
    """The study's first trial as Optuna's storage has it now."""
    storage = tune.open_storage(helpers.client(env))
    try:
        return optuna.load_study(study_name=study_id, storage=storage).trials[0]
    finally:
        storage.engine.dispose()


def test_a_trial_whose_worker_dies_runs_again_and_counts_once(env: dict[str, str], gate: Gate,
                                                              tmp_path: Path) -> None:
    first = start_worker(env, tmp_path / "first.log", "--device", "cpu")
    second = None
    driver = subprocess.Popen(mlpq_command(
        "tune", "fault", "--action", "block", "--until", str(gate.release), "--running", str(gate.running),
        "--search", "gib=0..1", "--objective", "released:max", "--trials", "2", "--parallel", "1",
        "--pruner", "none", "--seed", "7", "--json"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        assert driver.stderr is not None
        study_id = driver.stderr.readline().split()[1].rstrip(":")
        (job,) = helpers.eventually(lambda: [j for j in helpers.client(env).list(sweep=study_id)
                                             if j.status is JobStatus.RUNNING], WAIT_S, "trial 0's job to run")
        helpers.eventually(lambda: helpers.metric_count(env, job.id) == 1 and gate.pid(), WAIT_S,
                           "trial 0's first step, at the gate")
        helpers.eventually(lambda: trial_zero(env, study_id).intermediate_values == {0: 0.0}, WAIT_S,
                           "the driver to report trial 0's first step")
        gate.running.unlink()
        helpers.kill_worker(first)

        second = start_worker(env, tmp_path / "second.log", "--device", "cpu")
        again = helpers.eventually(lambda: (j := helpers.job(env, job.id)).attempts == 2 and gate.pid()
                                   and helpers.metric_count(env, job.id) == 1 and j, WAIT_S,
                                   "attempt 2 to report its first step, at the gate")
        assert again.status is JobStatus.RUNNING
        held = trial_zero(env, study_id)  # still running, its step 0 reported once, and trial 1 not yet asked
        assert held.state is optuna.trial.TrialState.RUNNING and held.intermediate_values == {0: 0.0}
        assert [j.id for j in helpers.client(env).list(sweep=study_id)] == [job.id]

        gate.open()
        out, err = driver.communicate(timeout=WAIT_S)
    finally:
        if driver.poll() is None:
            driver.kill()
        gate.open()
        first.stop()
        if second is not None:
            second.stop()
    assert driver.returncode == 0, err
    study = json.loads(out)
    jobs = {j.id: j for j in helpers.client(env).list(sweep=study_id)}
    assert [(t["state"], t["value"]) for t in study["trials"]] == [("complete", 1), ("complete", 1)]
    assert sorted(t["job_id"] for t in study["trials"]) == sorted(jobs) and len(jobs) == 2
    assert study["trials"][0]["job_id"] == job.id and jobs[job.id].attempts == 2
    assert jobs[study["trials"][1]["job_id"]].attempts == 1
    assert all(j.status is JobStatus.SUCCEEDED for j in jobs.values())
    assert err.count("trial 0 succeeded: released=1") == 1 and "is already reported" not in err
    assert trial_zero(env, study_id).intermediate_values == {0: 0.0, 1: 1.0}
    assert second.log().count(f"job {job.id} succeeded") == 1


def test_a_script_whose_worker_dies_resumes_from_its_checkpoint_and_counts_once(env: dict[str, str],
                                                                                tmp_path: Path) -> None:
    script, gates = tmp_path / "train.py", tmp_path / "gates"
    script.write_text(RESUMING_SCRIPT)
    gates.mkdir()
    first = start_worker(env, tmp_path / "first.log", "--device", "cpu", "--allow-commands")
    second = None
    driver = subprocess.Popen(mlpq_command(
        "tune", "command", "--search", "scale=1..2", "--objective", "loss:min", "--trials", "2", "--parallel", "1",
        "--pruner", "none", "--seed", "7", "--json", "--", sys.executable, str(script), "{scale}", str(gates)),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert driver.stderr is not None
        study_id = driver.stderr.readline().split()[1].rstrip(":")
        (job,) = helpers.eventually(lambda: helpers.client(env).list(sweep=study_id), WAIT_S, "trial 0's job")
        helpers.eventually(lambda: len(trial_zero(env, study_id).intermediate_values) == 2, WAIT_S,
                           "the driver to report trial 0's steps 0 and 1, its checkpoint kept")
        helpers.kill_worker(first)

        second = start_worker(env, tmp_path / "second.log", "--device", "cpu", "--allow-commands")
        helpers.eventually(lambda: len(helpers.client(env).list(sweep=study_id)) == 2, WAIT_S, "trial 1's job")
        (later,) = [j for j in helpers.client(env).list(sweep=study_id) if j.id != job.id]
        (gates / later.id).touch()
        out, err = driver.communicate(timeout=WAIT_S)
    finally:
        if driver.poll() is None:
            driver.kill()
        first.stop()
        if second is not None:
            second.stop()
    assert driver.returncode == 0, err
    study = json.loads(out)
    resumed = helpers.client(env).get(job.id)
    assert resumed.job.attempts == 2 and resumed.job.result["started_at"] == 2  # after the checkpoint of step 1
    assert [t["state"] for t in study["trials"]] == ["complete", "complete"]
    assert study["trials"][0]["job_id"] == job.id and study["trials"][0]["value"] == resumed.job.result["loss"]
    scale = study["trials"][0]["params"]["scale"]
    assert trial_zero(env, study_id).intermediate_values == {step: scale / (step + 1) for step in range(4)}
    assert [m.step for m in resumed.metrics] == [0, 1, 2, 3]
    assert len(helpers.client(env).list(sweep=study_id)) == 2 and "is already reported" not in err

"""Studies with real workers, on SQLite and PostgreSQL: a pruned trial's job ends ``pruned`` with its metrics;
a driver killed outright is resumed and completes the budget, each trial one job; a second driver and a
Ctrl-C'd one. Trials are ``fault`` jobs held at a gate, so every event happens at a known point."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from sqlalchemy import inspect

from mlpq.api_cli import tune, tune_driver
from mlpq.api_cli.search import Objective, Range
from mlpq.db.ledger import open_ledger
from mlpq.db.status import JobStatus
from tests.faults import helpers
from tests.faults.private_services import PrivateRedis
from tests.jobkinds.fault_kind import Gate
from tests.services import WorkerProcess, mlpq_command, run_mlpq, start_worker

pytestmark = pytest.mark.integration

WAIT_S = 60


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    """A CPU worker running two trials at once."""
    process = start_worker(env, tmp_path / "worker.log", "--device", "cpu", "--concurrency", "2")
    yield process
    process.stop()


def tune_args(gate: Gate, trials: int) -> list[str]:
    """A study of held ``fault`` jobs whose objective is the step they reached (1 once released)."""
    return ["tune", "fault", "--action", "block", "--until", str(gate.release), "--running", str(gate.running),
            "--search", "gib=0..1", "--objective", "released:max", "--trials", str(trials), "--parallel", "2",
            "--pruner", "none", "--seed", "7"]


class PruneAllButTheFirst(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number > 0


def sweep_jobs(env: dict[str, str], study_id: str) -> list[Any]:
    return helpers.client(env).list(sweep=study_id, limit=100)


def test_a_pruned_trial_ends_pruned_within_a_heartbeat_keeping_its_metrics(
        env: dict[str, str], gate: Gate, worker: WorkerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    api = helpers.client(env)
    config = tune_driver.StudyConfig("fault", (Range("gib", 0, 1, False, False),), {**gate.params(), "seed": 7}, 2,
                                     Objective("released", "max"), "random", "none", 7, "cpu", None, None, 2)
    storage = tune.open_storage(api)
    study = tune_driver.create_study(storage, "ab" * 16, config, pruner=PruneAllButTheFirst())
    said: list[str] = []
    driver = tune_driver.Driver(api, study, config, tune.take_lock(api, study.study_name), said.append, 2)
    thread = threading.Thread(target=driver.run)
    thread.start()
    try:
        pruned = helpers.eventually(lambda: [j for j in sweep_jobs(env, study.study_name)
                                             if j.status is JobStatus.PRUNED], WAIT_S, "a trial's job to end pruned")
    finally:
        gate.open()
        thread.join(WAIT_S)
    assert not thread.is_alive()
    (job,) = pruned
    assert job.error == "pruned while running" and helpers.metric_count(env, job.id) == 1
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {0: optuna.trial.TrialState.COMPLETE, 1: optuna.trial.TrialState.PRUNED}
    assert study.trials[1].user_attrs["job_id"] == job.id and study.best_value == 1
    assert "trial 1 pruned at step 0 (released 0)" in said
    ledger = open_ledger(env["MLPQ_DATABASE_URL"])  # still at mlpq's own revision: the study's tables are elsewhere
    assert "studies" not in inspect(ledger).get_table_names() and "alembic_version" in inspect(ledger).get_table_names()
    ledger.dispose()


def test_a_killed_driver_is_resumed_and_completes_the_budget_once_per_trial(
        env: dict[str, str], gate: Gate, worker: WorkerProcess) -> None:
    first = subprocess.Popen(mlpq_command(*tune_args(gate, 3)), env=env, stderr=subprocess.PIPE, text=True)
    assert first.stderr is not None
    study_id = first.stderr.readline().split()[1].rstrip(":")
    helpers.eventually(lambda: len(sweep_jobs(env, study_id)) == 2 and gate.pid(), WAIT_S, "two trials submitted")

    refused = run_mlpq("tune", "--resume", study_id, env=env)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert f"study {study_id} already has a driver (process {first.pid} on" in refused.stderr

    first.kill()
    first.wait(WAIT_S)
    second = subprocess.Popen(mlpq_command("tune", "--resume", study_id[:8]), env=env, stderr=subprocess.PIPE,
                              text=True)
    assert second.stderr is not None
    assert second.stderr.readline().startswith(f"study {study_id}: fault over gib, 3 trials, 2 at once")
    assert second.stderr.readline() == "re-attached: 0 trials told, 2 running, 1 to go\n"
    second.send_signal(signal.SIGINT)
    assert second.wait(WAIT_S) == 130
    assert f"resume it with 'mlpq tune --resume {study_id}'" in second.stderr.read()

    gate.open()
    helpers.eventually(lambda: all(j.status is JobStatus.SUCCEEDED for j in sweep_jobs(env, study_id)), WAIT_S,
                       "the two trials' jobs to end with no driver")
    done = run_mlpq("tune", "fault", "--resume", study_id, "--wait", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert "while no driver ran: trial 0 succeeded: released=1" in done.stderr
    assert "while no driver ran: trial 1 succeeded: released=1" in done.stderr
    study = json.loads(done.stdout)
    jobs = sweep_jobs(env, study_id)
    assert [t["state"] for t in study["trials"]] == ["complete"] * 3 and study["best"]["value"] == 1
    assert sorted(t["job_id"] for t in study["trials"]) == sorted(j.id for j in jobs)
    assert len(jobs) == 3 and all(j.status is JobStatus.SUCCEEDED and j.attempts == 1 for j in jobs)


def test_a_driver_that_loses_the_broker_stops_with_one_line_and_the_study_resumes(
        env: dict[str, str], gate: Gate, tmp_path: Path) -> None:
    private = PrivateRedis()
    private.start()
    env = {**env, "MLPQ_BROKER_URL": private.url}
    worker = start_worker(env, tmp_path / "private-worker.log", "--device", "cpu", "--concurrency", "2")
    try:
        driver = subprocess.Popen(mlpq_command(*tune_args(gate, 2)), env=env, stderr=subprocess.PIPE, text=True)
        assert driver.stderr is not None
        study_id = driver.stderr.readline().split()[1].rstrip(":")
        helpers.eventually(lambda: len(sweep_jobs(env, study_id)) == 2 and gate.pid(), WAIT_S, "two trials running")
        private.stop()
        assert driver.wait(WAIT_S) == 1
        said = driver.stderr.read().splitlines()
        assert said[-1].startswith("Error: cannot reach the ledger or the broker: ") and len(said) == 3
        assert said[-1].endswith(f"its trials go on: mlpq tune --resume {study_id}")
        private.start()
        gate.open()
        done = run_mlpq("tune", "--resume", study_id, "--json", env=env)
        assert done.returncode == 0, done.stderr
        assert [t["state"] for t in json.loads(done.stdout)["trials"]] == ["complete", "complete"]
        assert len(sweep_jobs(env, study_id)) == 2
    finally:
        worker.stop()
        private.stop()

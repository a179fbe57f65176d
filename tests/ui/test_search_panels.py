"""The sweep page's search panels: the best value so far per trial and the objective against each searched
parameter, pruned trials marked; for a grid sweep and for an ``mlpq tune`` study (a log axis where its search is
log)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from mlpq.api_cli import tune, tune_driver
from mlpq.api_cli.api import Client
from mlpq.api_cli.search import Objective, Range
from mlpq.config import Settings
from mlpq.db.status import JobStatus
from mlpq.figures import Trial, best_so_far
from mlpq.ui.app import create_app
from tests.api_cli.ledger_rows import add_job

MNIST = {"seed": 7, "epochs": 3, "batch_size": 200, "momentum": 0.0, "variant": "module", "dataset": "mnist-sample"}


def accuracy_job(lr: float, accuracy: float, sweep_id: str, status: JobStatus = JobStatus.SUCCEEDED) -> str:
    metrics = [(epoch, {"test_accuracy": accuracy - (3 - epoch) / 100}) for epoch in (1, 2, 3)]
    metrics = metrics[:1] if status is JobStatus.PRUNED else metrics
    return add_job("mnist", {**MNIST, "lr": lr}, status=status, sweep_id=sweep_id, metrics=metrics,
                   result={"test_accuracy": accuracy} if status is JobStatus.SUCCEEDED else None)


def search_panels(sweep_prefix: str) -> list[dict]:
    client = TestClient(create_app(Client(Settings.from_env()), allowed_hosts=("testserver",)))
    response = client.get(f"/api/sweeps/{sweep_prefix}/search")
    assert response.status_code == 200, response.text
    chart = response.json()
    assert chart["done"] is True
    return chart["figure"]["panels"]


def test_a_grid_sweep_is_drawn_as_a_search_with_a_log_axis_over_decades() -> None:
    for lr, accuracy in ((0.001, 0.80), (0.01, 0.90), (0.1, 0.85)):
        accuracy_job(lr, accuracy, "feed00000001")
    history, by_lr = search_panels("feed")
    assert history["title"] == "best test_accuracy so far" and history["x"]["label"] == "trial"
    assert history["series"][2]["points"] == [[0, 0.80], [1, 0.90], [2, 0.90]]
    assert by_lr["title"] == "test_accuracy against lr" and by_lr["x"]["scale"] == "log"
    assert by_lr["series"][0]["points"] == [[0.001, 0.80], [0.01, 0.90], [0.1, 0.85]]


def test_a_studys_panels_mark_pruned_trials_and_follow_its_search() -> None:
    api = Client(Settings.from_env())
    study_id = "de" * 16
    config = tune_driver.StudyConfig("mnist", (Range("lr", 0.01, 0.5, False, False),), {"seed": 7}, 3,
                                     Objective("test_accuracy", "max"), "tpe", "asha", 7, "cpu", None, None, 1)
    tune_driver.create_study(tune.open_storage(api), study_id, config)
    accuracy_job(0.02, 0.90, study_id)
    accuracy_job(0.3, 0.70, study_id, JobStatus.PRUNED)
    accuracy_job(0.4, 0.95, study_id)
    history, by_lr = search_panels(study_id[:8])
    ended, pruned, best = history["series"]
    assert ended["points"] == [[0, 0.90], [2, 0.95]] and ended["marker"] == "circle"
    assert pruned["points"] == [[1, pytest.approx(0.68)]] and pruned["marker"] == "cross"  # its last value, at epoch 1
    assert best["points"] == [[0, 0.90], [1, 0.90], [2, 0.95]]
    assert by_lr["x"]["scale"] == "linear" and by_lr["series"][1]["points"] == [[0.3, pytest.approx(0.68)]]


def test_a_command_studys_panels_read_the_values_filled_into_its_arguments() -> None:
    api = Client(Settings.from_env())
    study_id = "dc" * 16
    config = tune_driver.StudyConfig("command", (Range("lr", 1e-4, 0.1, True, False),),
                                     {"argv": ["python", "t.py", "--lr", "{lr}"], "workdir": None, "env": {}}, 2,
                                     Objective("loss", "min"), "tpe", "median", 7, "cpu", None, None, 1)
    tune_driver.create_study(tune.open_storage(api), study_id, config)
    for lr, loss in (("0.001", 0.5), ("0.01", 0.25)):
        add_job("command", {"argv": ["python", "t.py", "--lr", lr], "values": {"lr": lr}}, sweep_id=study_id,
                status=JobStatus.SUCCEEDED, metrics=[(0, {"loss": loss})], result={"loss": loss, "exit_code": 0})
    history, by_lr = search_panels(study_id[:8])
    assert history["title"] == "best loss so far" and history["series"][2]["points"] == [[0, 0.5], [1, 0.25]]
    assert by_lr["x"]["scale"] == "log" and by_lr["series"][0]["points"] == [[0.001, 0.5], [0.01, 0.25]]


def test_best_so_far_skips_pruned_trials_and_minimises_too() -> None:
    trials = [Trial(0, {}, None), Trial(1, {}, 3.0), Trial(2, {}, 1.0, pruned=True), Trial(3, {}, 2.0)]
    assert best_so_far(trials, "min") == ((1.0, 3.0), (2.0, 3.0), (3.0, 2.0))
    assert best_so_far(trials, "max") == ((1.0, 3.0), (2.0, 3.0), (3.0, 3.0))

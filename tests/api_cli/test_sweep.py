"""Sweeps (comma lists on ``submit``), ``results --sweep`` and ``mlpq compare``, against the real Redis."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
from typing import Any

import pytest
import redis

from mlpq.api_cli.api import Client
from mlpq.api_cli.sweep import Axis, grid
from mlpq.db import jobs
from mlpq.db.engine import make_engine
from mlpq.kinds.himmelblau import HimmelblauSpec
from tests.api_cli.ledger_rows import himmelblau_job, mlpq, mnist_job
from tests.services import queue_of


def stored_jobs() -> list:
    with make_engine(os.environ["MLPQ_DATABASE_URL"]).connect() as connection:
        return list(reversed(jobs.list_jobs(connection, limit=10_000)))


def test_the_grid_is_the_cartesian_product_of_the_axes() -> None:
    params = {"lr": Axis((0.1, 0.2)), "batch_size": Axis((100, 200, 300)), "epochs": Axis((2,)), "seed": None}
    combinations = grid(params)
    assert len(combinations) == 6
    assert {(c["lr"], c["batch_size"]) for c in combinations} == {
        (lr, b) for lr in (0.1, 0.2) for b in (100, 200, 300)}
    assert all(c["epochs"] == 2 for c in combinations)
    [seed] = {c["seed"] for c in combinations}  # no seed given: one drawn for the whole sweep
    assert isinstance(seed, int)


@pytest.mark.parametrize("draw", [
    lambda: grid({"lr": Axis((0.1, 0.2)), "seed": None})[0]["seed"],
    lambda: Client.validate("himmelblau", {})["seed"],
], ids=["sweep", "one job"])
def test_drawn_seeds_range_over_every_seed_the_spec_allows(monkeypatch: pytest.MonkeyPatch, draw: Any) -> None:
    [below] = [item.lt for item in HimmelblauSpec.model_fields["seed"].metadata if hasattr(item, "lt")]
    monkeypatch.setattr(secrets, "randbelow", lambda bound: bound - 1)  # the largest seed it can draw
    assert draw() == below - 1


def test_a_given_seed_or_seeds_are_kept() -> None:
    assert [c["seed"] for c in grid({"lr": Axis((0.1, 0.2)), "seed": Axis((5,))})] == [5, 5]
    assert [c["seed"] for c in grid({"lr": Axis((0.1,)), "seed": Axis((1, 2))})] == [1, 2]
    assert grid({"lr": Axis((0.1,)), "seed": None}) == [{"lr": 0.1, "seed": None}]  # one job: the API draws it


def test_comma_lists_submit_the_grid_as_one_sweep(broker_url: str) -> None:
    result = mlpq("--broker-url", broker_url, "submit", "mnist", "--lr", "0.01,0.05,0.1", "--batch-size",
                  "100,200", "--epochs", "2", "--seed", "3")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    found = stored_jobs()
    [sweep_id] = {job.sweep_id for job in found}
    assert len(found) == 6 and sweep_id is not None
    assert sorted((job.params["lr"], job.params["batch_size"]) for job in found) == [
        (0.01, 100), (0.01, 200), (0.05, 100), (0.05, 200), (0.1, 100), (0.1, 200)]
    assert all(job.params["epochs"] == 2 and job.params["seed"] == 3 for job in found)
    assert lines[:6] == [f"{job.id} queued (mnist on cpu) lr={job.params['lr']} batch_size={job.params['batch_size']}"
                         for job in found]
    assert lines[6].startswith(f"sweep {sweep_id}: 6 jobs (mlpq results --sweep {sweep_id[:8]}")
    assert redis.Redis.from_url(broker_url).llen(queue_of("cpu")) == 6


def test_a_sweep_as_json(broker_url: str) -> None:
    result = mlpq("--broker-url", broker_url, "submit", "himmelblau", "--optimizer", "adam,sgd", "--json")
    data = json.loads(result.output)
    assert [row["id"] for row in data["jobs"]] == [job.id for job in stored_jobs()]
    assert {row["sweep_id"] for row in data["jobs"]} == {data["sweep_id"]}


def test_repeated_starts_stay_one_job_and_one_value_is_not_a_sweep(broker_url: str) -> None:
    result = mlpq("--broker-url", broker_url, "submit", "himmelblau", "--start", "1,0", "--start", "-4,0",
                  "--lr", "0.01")
    assert result.exit_code == 0 and re.fullmatch(r"[0-9a-f]{32} queued \(himmelblau on cpu\)\n", result.output)
    [job] = stored_jobs()
    assert job.sweep_id is None and job.params["starts"] == [[1.0, 0.0], [-4.0, 0.0]]


BAD_SWEEPS = [
    (["mnist", "--lr", "0.01,fast"], "--lr"),
    (["mnist", "--lr", "0.01,,0.1"], "--lr"),
    (["mnist", "--lr", "0.01,"], "--lr"),
    (["mnist", "--batch-size", "100,2.5"], "--batch-size"),
    (["mnist", "--epochs", "1,1000"], "--epochs"),
    (["mnist", "--lr", "0.1,nan"], "--lr"),
    (["mnist", "--variant", "module,cnn"], "--variant"),
    (["mnist", "--seed", "1,-2"], "--seed"),
    (["himmelblau", "--optimizer", "adam,lbfgs"], "--optimizer"),
    (["himmelblau", "--steps", "10,0"], "--steps"),
    (["himmelblau", "--optimizer", "adam,sgd", "--momentum", "0,0.9"], "momentum applies to sgd and rmsprop only"),
    (["mnist", "--lr", ",".join(f"0.0{i}" for i in range(1, 10)), "--batch-size", ",".join(map(str, range(1, 13))),
      "--epochs", "1,2,3,4,5,6,7,8,9,10"], "has 1,080 jobs; at most 1,000"),
]


@pytest.mark.parametrize(("args", "mentions"), BAD_SWEEPS)
def test_a_bad_sweep_is_one_usage_error_and_submits_nothing(broker_url: str, args: list[str], mentions: str) -> None:
    result = mlpq("--broker-url", broker_url, "submit", *args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and mentions in lines[0]
    assert stored_jobs() == [] and redis.Redis.from_url(broker_url).llen(queue_of("cpu")) == 0


def test_results_filters_by_sweep_and_flattens_parameters() -> None:
    sweep_a, sweep_b = "a" * 32, "b" * 32
    in_a = [mnist_job(lr=0.01, sweep_id=sweep_a), mnist_job(lr=0.1, sweep_id=sweep_a)]
    mnist_job(lr=0.5, sweep_id=sweep_b)
    mnist_job(lr=0.7)
    rows = json.loads(mlpq("results", "--sweep", "aaaa", "--format", "json").output)
    assert [row["id"] for row in rows] == list(reversed(in_a))
    assert [row["param.lr"] for row in rows] == [0.1, 0.01] and {row["sweep_id"] for row in rows} == {sweep_a}
    table = mlpq("results", "--sweep", sweep_a).output.splitlines()
    assert len(table) == 3 and table[1].startswith(in_a[1][:12])
    records = list(csv.DictReader(io.StringIO(mlpq("results", "--sweep", "aaaa", "--format", "csv").output)))
    assert [r["param.lr"] for r in records] == ["0.1", "0.01"] and records[0]["param.batch_size"] == "200"
    assert mlpq("results", "--sweep", "cccc").output.strip() == "no jobs match"


def test_results_csv_writes_lists_as_json() -> None:
    himmelblau_job()
    [record] = csv.DictReader(io.StringIO(mlpq("results", "--format", "csv").output))
    assert json.loads(record["param.starts"]) == [[4.0, 0.0], [-4.0, 0.0]]


def test_compare_shows_only_the_parameters_that_differ_and_the_results() -> None:
    slow, fast = mnist_job(lr=0.01), mnist_job(lr=0.1, epochs=5)
    result = mlpq("compare", slow[:6], fast[:6])
    assert result.exit_code == 0, result.output
    header, first, second = (re.split(r"\s{2,}", line) for line in result.output.strip().splitlines())
    assert header == ["ID", "KIND", "STATUS", "EPOCHS", "LR", "TEST_ACCURACY", "TEST_LOSS", "TRAIN_LOSS", "DURATION"]
    assert first[:5] == [slow[:12], "mnist", "succeeded", "3", "0.01"] and first[5:8] == ["0.83", "0.4", "0.333333"]
    assert second[:5] == [f"{fast[:12]} ★", "mnist", "succeeded", "5", "0.1"] and second[5] == "0.85"  # the best


def test_compare_formats_give_every_parameter_and_result_a_column() -> None:
    one, other = himmelblau_job(lr=0.01), himmelblau_job(lr=0.1)
    rows = json.loads(mlpq("compare", one, other, "--format", "json").output)
    assert [(r["id"], r["param.lr"], r["param.optimizer"], r["result.minima_found"]) for r in rows] == [
        (one, 0.01, "adam", 2), (other, 0.1, "adam", 2)]
    header = mlpq("compare", one, other, "--format", "csv").output.splitlines()[0].split(",")
    assert header[:4] == ["id", "kind", "status", "device"] and "param.steps" in header and "result.f" in header


def test_compare_a_sweep_in_the_order_submitted() -> None:
    sweep_id = "c" * 32
    submitted = [mnist_job(lr=lr, sweep_id=sweep_id) for lr in (0.01, 0.02, 0.03)]
    rows = json.loads(mlpq("compare", "--sweep", "cccc", "--format", "json").output)
    assert [row["id"] for row in rows] == submitted


@pytest.mark.parametrize(("args", "code", "message"), [
    (["compare"], 2, "name the jobs to compare, or a sweep with --sweep ID"),
    (["compare", "xyz"], 2, "is not a job id"),
    (["compare", "abcdef"], 1, "no job abcdef"),
    (["compare", "--sweep", "nothex"], 2, "is not a sweep id"),
    (["compare", "--sweep", "dddd"], 1, "no jobs in a sweep dddd"),
    (["results", "--sweep", "x"], 2, "is not a sweep id"),
])
def test_compare_errors(args: list[str], code: int, message: str) -> None:
    result = mlpq(*args)
    assert result.exit_code == code and message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_sweep_whose_publishing_fails_part_way_runs_nothing(broker_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lpush = redis.Redis.lpush
    sent = []

    def fail_after_two(client: redis.Redis, queue: str, message: str) -> object:
        if len(sent) == 2:
            raise redis.ConnectionError("connection reset by peer")
        sent.append(json.loads(message)["headers"]["id"])
        return lpush(client, queue, message)

    monkeypatch.setenv("MLPQ_BROKER_URL", broker_url)
    monkeypatch.setattr(redis.Redis, "lpush", fail_after_two)
    result = mlpq("submit", "himmelblau", "--lr", "0.1,0.2,0.3,0.4", "--steps", "10")
    assert result.exit_code == 1
    assert result.output.strip().endswith("none of the 4 jobs will run (2 had been published: workers skip them)")
    assert stored_jobs() == []  # withdrawn: a worker taking one of the two messages finds no job
    assert redis.Redis.from_url(broker_url).llen(queue_of("cpu")) == 2  # they will find them cancelled

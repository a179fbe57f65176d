"""``mlpq results`` and ``compare`` for analysis: result figures as columns, ``--sort``, the best job marked,
and what an empty listing says; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from mlpq.db.engine import make_engine
from mlpq.db.schema import JOBS
from mlpq.db.status import JobStatus
from tests.api_cli.ledger_rows import add_job, mlpq


@pytest.fixture(autouse=True)
def ledger(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLPQ_DATABASE_URL", database_url)
    return database_url


def mnist(accuracy: float | None, *, lr: float = 0.01, status: JobStatus = JobStatus.SUCCEEDED) -> str:
    result = None if accuracy is None else {"test_accuracy": accuracy, "test_loss": 1 - accuracy, "train_loss": 0.5,
                                             "headline": f"test accuracy {accuracy:.2%}"}
    return add_job("mnist", {"seed": 1, "lr": lr}, result=result, status=status)


def listed(*args: str) -> list[dict]:
    result = mlpq("results", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_json_and_csv_give_the_kinds_result_figures_as_columns() -> None:
    job_id = mnist(0.97)
    [row] = listed()
    assert {key: row[key] for key in ("result.test_accuracy", "result.test_loss", "result.train_loss")} == {
        "result.test_accuracy": 0.97, "result.test_loss": pytest.approx(0.03), "result.train_loss": 0.5}
    header, line = mlpq("results", "--format", "csv").output.splitlines()
    assert header == ("id,kind,status,device,pool,created,duration_s,headline,sweep_id,param.seed,param.lr,"
                      "result.test_accuracy,result.test_loss,result.train_loss")
    [record] = csv.DictReader(io.StringIO(f"{header}\n{line}"))
    assert record["id"] == job_id and float(record["result.test_accuracy"]) == 0.97


def test_a_job_without_a_result_has_empty_figures() -> None:
    mnist(None, status=JobStatus.FAILED)
    [row] = listed()
    assert row["result.test_accuracy"] is None and row["headline"] == "diverged: f is not finite"


def test_sort_by_a_result_figure_descending_then_the_limit() -> None:
    low, high, middle, failed = mnist(0.80), mnist(0.95), mnist(0.90), mnist(None, status=JobStatus.FAILED)
    assert [r["id"] for r in listed("--sort", "-result.test_accuracy")] == [high, middle, low, failed]
    assert [r["id"] for r in listed("--sort", "result.test_accuracy")] == [low, middle, high, failed]
    assert [r["id"] for r in listed("--sort", "-result.test_accuracy", "--limit", "2")] == [high, middle]
    table = mlpq("results", "--sort", "-result.test_accuracy", "--limit", "1").output.splitlines()
    assert len(table) == 2 and table[1].startswith(high[:12])


def ran_for(job_id: str, seconds: float) -> None:
    began = datetime(2024, 1, 1, tzinfo=timezone.utc)
    with make_engine(os.environ["MLPQ_DATABASE_URL"]).begin() as connection:
        connection.execute(update(JOBS).where(JOBS.c.id == job_id).values(
            started_at=began, finished_at=began + timedelta(seconds=seconds)))


def test_sort_by_a_parameter_or_the_duration() -> None:
    fast, slow = mnist(0.9, lr=0.5), mnist(0.9, lr=0.01)
    queued = mnist(None, lr=0.1, status=JobStatus.QUEUED)
    ran_for(fast, 5)
    ran_for(slow, 50)
    assert [r["id"] for r in listed("--sort", "param.lr")] == [slow, queued, fast]
    assert [r["id"] for r in listed("--sort", "-duration_s")] == [slow, fast, queued]  # no duration: last
    assert [r["id"] for r in listed("--sort", "duration_s")] == [fast, slow, queued]


def test_sort_by_the_ledgers_columns() -> None:
    first, second = mnist(0.9), add_job("himmelblau", {"seed": 1}, status=JobStatus.QUEUED)
    third = add_job("mnist", {"seed": 2}, status=JobStatus.RUNNING)
    assert [r["id"] for r in listed()] == [third, second, first]  # newest first
    assert [r["id"] for r in listed("--sort", "created")] == [first, second, third]
    assert [r["status"] for r in listed("--sort", "status")] == ["queued", "running", "succeeded"]
    assert [r["status"] for r in listed("--sort", "-status")] == ["succeeded", "running", "queued"]
    assert [r["id"] for r in listed("--sort", "-created", "--limit", "1")] == [third]


@pytest.mark.parametrize(("args", "mentions"), [
    (["--sort", "accuracy"], "no field 'accuracy' to sort by: use id, kind, status"),
    (["--sort", "-result.tset_accuracy"], "use result.f, result.distance"),
    (["--kind", "mnist", "--sort", "result.f"], "use result.test_accuracy, result.test_loss, result.train_loss"),
    (["--sort", "param.nope"], "param.lr"),
    (["--sort", "-"], "no field '' to sort by"),
])
def test_an_unknown_sort_field_is_a_one_line_usage_error(args: list[str], mentions: str) -> None:
    mnist(0.9)
    result = mlpq("results", *args)
    [line] = result.output.strip().splitlines()
    assert result.exit_code == 2 and line.startswith("Error: Invalid value for --sort: ") and mentions in line


@pytest.mark.parametrize("args", [["--status", "queued"], ["--kind", "himmelblau"], ["--device", "cuda:0"],
                                  ["--sweep", "cccc"], ["--status", "failed", "--kind", "mnist"]])
def test_filters_that_match_nothing_say_so(args: list[str]) -> None:
    mnist(0.9)
    result = mlpq("results", *args)
    assert result.exit_code == 0 and result.output.strip() == "no jobs match"


def test_an_empty_ledger_says_no_jobs_yet() -> None:
    assert mlpq("results").output.startswith("no jobs yet")


def test_compare_marks_the_best_job_as_the_ui_does() -> None:
    low, high = mnist(0.80, lr=0.1), mnist(0.95, lr=0.2)
    lines = mlpq("compare", low, high).output.splitlines()
    assert re.match(rf"{high[:12]} ★\s", lines[2]) and re.match(rf"{low[:12]}\s", lines[1]) and "★" not in lines[1]
    rows = json.loads(mlpq("compare", low, high, "--format", "json").output)
    assert [(r["id"], r["best"]) for r in rows] == [(low, False), (high, True)]
    header = mlpq("compare", low, high, "--format", "csv").output.splitlines()[0]
    assert header.endswith("result.test_accuracy,result.test_loss,result.train_loss,duration_s,best")

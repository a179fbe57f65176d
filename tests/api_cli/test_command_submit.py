"""``mlpq submit command``: the argv stored as a list, ``--param`` grids as sweeps, bad input refused with
nothing written; the command's own queues and how results, show and compare word a command job."""

from __future__ import annotations

import json
import os

import pytest
import redis

from mlpq.db import jobs
from mlpq.db.engine import make_engine
from mlpq.db.status import JobStatus
from mlpq.devices import Device, job_queue, worker_queues
from mlpq.kinds.command import MAX_ARGUMENT_BYTES, MAX_ARGUMENTS
from tests.api_cli.ledger_rows import add_job, mlpq
from tests.services import queue_of


def stored_jobs() -> list:
    with make_engine(os.environ["MLPQ_DATABASE_URL"]).connect() as connection:
        return list(reversed(jobs.list_jobs(connection, limit=100)))


def test_command_jobs_have_queues_of_their_own() -> None:
    assert job_queue("command", "cuda:0", None, "l1") == "mlpq.l1.cuda:0.commands"
    assert job_queue("command", "cpu", "lab", "l1") == "mlpq.l1.lab.cpu.commands"
    assert job_queue("mnist", "cpu", None, "l1") == "mlpq.l1.cpu"
    assert worker_queues(Device("cuda", 1), "l1") == ["mlpq.l1.cuda:1", "mlpq.l1.cuda"]
    assert worker_queues(Device("cuda", 1), "l1", commands=True) == [
        "mlpq.l1.cuda:1", "mlpq.l1.cuda", "mlpq.l1.cuda:1.commands", "mlpq.l1.cuda.commands"]


def test_a_sweep_fills_the_placeholders_and_stores_argv_lists(broker_url: str) -> None:
    result = mlpq("--broker-url", broker_url, "submit", "command", "--workdir", "/srv/exp", "--env", "A=1 2",
                  "--param", "lr=0.01,0.05", "--param", "bs=100", "--", "python", "train.py", "--lr", "{lr}",
                  "--batch-size={bs}", "echo ${HOME}")
    assert result.exit_code == 0, result.output
    created = stored_jobs()
    assert [job.params["argv"] for job in created] == [
        ["python", "train.py", "--lr", lr, "--batch-size=100", "echo ${HOME}"] for lr in ("0.01", "0.05")]
    assert [job.params["values"] for job in created] == [{"lr": "0.01", "bs": "100"}, {"lr": "0.05", "bs": "100"}]
    assert {job.params["workdir"] for job in created} == {"/srv/exp"}
    assert created[0].params["env"] == {"A": "1 2"} and len({job.sweep_id for job in created}) == 1
    assert "lr=0.01" in result.output and "lr=0.05" in result.output
    broker = redis.Redis.from_url(broker_url)
    assert broker.llen(queue_of("cpu") + ".commands") == 2 and broker.llen(queue_of("cpu")) == 0


def test_results_show_and_compare_word_the_command(broker_url: str) -> None:
    assert mlpq("--broker-url", broker_url, "submit", "command", "--param", "lr=0.01,0.05", "--",
                "python", "train.py", "--lr", "{lr}").exit_code == 0
    listed = mlpq("results")
    assert "python train.py --lr 0.01 (lr=0.01)" in listed.output
    shown = mlpq("show", stored_jobs()[0].id)
    assert "params    command=python train.py --lr 0.01, lr=0.01" in shown.output
    compared = mlpq("compare", *(job.id for job in stored_jobs()))
    header = compared.output.splitlines()[0].split()
    assert header[:5] == ["ID", "KIND", "STATUS", "COMMAND", "LR"], compared.output


@pytest.mark.parametrize(("args", "message"), [
    ([], "no command: give it after --"),
    (["--", "python", "t.py", "{lr}"], "{lr} in the command has no --param lr=VALUES"),
    (["--param", "x=1", "--", "python", "t.py"], "--param x is not used"),
    (["--param", "x=1,,2", "--", "t", "{x}"], "empty value in 'x=1,,2'"),
    (["--param", "x", "--", "t", "{x}"], "is not NAME=V1,V2"),
    (["--env", "MLPQ_DATABASE_URL=x", "--", "t"], "environment variable MLPQ_DATABASE_URL is set by the worker"),
    (["--env", "CUDA_VISIBLE_DEVICES=1", "--", "t"], "CUDA_VISIBLE_DEVICES is set by the worker"),
    (["--env", "1A=1", "--", "t"], "invalid environment variable name '1A'"),
    (["--env", "NOVALUE", "--", "t"], "'NOVALUE' is not NAME=VALUE"),
    (["--workdir", "relative/dir", "--", "t"], "must be an absolute path, got 'relative/dir'"),
    (["--", "t", *["a"] * MAX_ARGUMENTS], "at most 1000 items"),
    (["--", "t", "a" * (MAX_ARGUMENT_BYTES + 1)], "argument 1 is over 65,536 bytes"),
    (["--", "t", *["a" * 60_000] * 5], "the command is over 262,144 bytes"),
    (["--", "t", "nul\0"], "argument 1 contains a NUL character"),
])
def test_bad_input_exits_2_in_one_line_and_writes_nothing(broker_url: str, args: list[str], message: str) -> None:
    result = mlpq("--broker-url", broker_url, "submit", "command", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert stored_jobs() == []


def test_json_prints_the_job(broker_url: str) -> None:
    result = mlpq("--broker-url", broker_url, "submit", "command", "--json", "--", "bash", "-c", "echo hi")
    assert result.exit_code == 0
    assert json.loads(result.output)["kind"] == "command"
    assert stored_jobs()[0].params["argv"] == ["bash", "-c", "echo hi"]


def test_compare_and_the_sweep_page_show_what_each_script_gave_as_its_result() -> None:
    from mlpq.api_cli.api import Client
    from mlpq.config import Settings
    from mlpq.ui import data

    params = {"argv": ["python", "/very/long/path/to/the/project/train.py", "--lr", "0.01"], "values": {"lr": "0.01"},
              "workdir": None, "env": {}}
    first = add_job("command", params, result={"exit_code": 0, "test_accuracy": 0.91, "note": "text"}, sweep_id="s1")
    second = add_job("command", {**params, "argv": [*params["argv"][:3], "0.05"], "values": {"lr": "0.05"}},
                     status=JobStatus.FAILED, sweep_id="s1")
    compared = mlpq("compare", first, second).output.splitlines()
    assert compared[0].split() == ["ID", "KIND", "STATUS", "COMMAND", "LR", "TEST_ACCURACY", "DURATION"]
    assert "python …/train.py --lr 0.01" in compared[1] and "0.91" in compared[1]
    page = data.sweep_page([Client(Settings.from_env()).get(job_id).job for job_id in (first, second)])
    assert page["params"] == ["command", "lr"] and page["figures"] == ["test_accuracy"]
    assert [row["figures"] for row in page["rows"]] == [["0.91"], ["-"]]

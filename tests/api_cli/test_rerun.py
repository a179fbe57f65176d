"""Reproducibility: ``mlpq show`` tells what produced a result; ``mlpq rerun`` repeats a job as a new one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import redis

from mlpq.api_cli.api import Client
from mlpq.db import jobs
from mlpq.db.status import JobStatus
from mlpq.db.engine import make_engine
from mlpq.devices import Device
from mlpq.worker.execute import execute_job
from mlpq.worker.lease import LeaseKeeper
from tests.api_cli.ledger_rows import add_job, mlpq, mnist_job
from tests.services import queue_of

PROVENANCE = {"mlpq": "0.1.0", "torch": "2.5.1+cu124", "cuda": "12.4", "python": "3.11.7", "host": "gpu-box",
              "device_name": "NVIDIA H200", "git_commit": "71e7a70c2f3b9e0d1a2b3c4d5e6f708192a3b4c5"}
HIMMELBLAU = {"seed": 11, "starts": [[1.0, 1.0]], "optimizer": "sgd", "lr": 0.005, "momentum": 0.9, "steps": 500,
              "log_every": 100}


def test_show_tells_what_produced_the_result() -> None:
    job_id = add_job("mnist", {"epochs": 1}, result={"headline": "test accuracy 90.00%"}, provenance=PROVENANCE)
    text = mlpq("show", job_id).output
    assert ("ran with  mlpq 0.1.0, torch 2.5.1+cu124, CUDA 12.4, Python 3.11.7 on NVIDIA H200 (host gpu-box), "
            "git 71e7a70c2f") in text.splitlines()
    assert json.loads(mlpq("show", job_id, "--json").output)["provenance"] == PROVENANCE


def test_show_without_provenance_has_no_such_line() -> None:
    job_id = add_job("mnist", {"epochs": 1}, status=JobStatus.QUEUED)
    assert "ran with" not in mlpq("show", job_id).output


def test_rerun_submits_the_same_spec_as_a_new_job(broker_url: str) -> None:
    original = add_job("himmelblau", HIMMELBLAU, result={"f": 0.1}, device="cuda:1")
    result = mlpq("--broker-url", broker_url, "rerun", original[:6], "--json")
    assert result.exit_code == 0, result.output
    again = json.loads(result.output)["id"]
    detail = json.loads(mlpq("show", again, "--json").output)
    assert again != original and detail["status"] == "queued" and detail["rerun_of"] == original
    assert (detail["params"], detail["device"], detail["timeout_s"]) == (
        Client.validate("himmelblau", HIMMELBLAU), "cuda:1", 60)  # as submitted, new fields at their defaults
    assert redis.Redis.from_url(broker_url).llen(queue_of("cuda:1")) == 1
    assert f"rerun of  {original}" in mlpq("show", again).output


def test_rerun_on_another_device(broker_url: str) -> None:
    original = mnist_job()
    result = mlpq("--broker-url", broker_url, "rerun", original, "--device", "cpu")
    assert result.output.strip().endswith(f"queued (mnist on cpu), a rerun of {original}")
    assert redis.Redis.from_url(broker_url).llen(queue_of("cpu")) == 1


def test_a_rerun_reproduces_the_result(broker_url: str, tmp_path: Path) -> None:
    original = add_job("himmelblau", HIMMELBLAU, status=JobStatus.QUEUED)
    again = json.loads(mlpq("--broker-url", broker_url, "rerun", original, "--json").output)["id"]
    engine = make_engine(os.environ["MLPQ_DATABASE_URL"])
    for job_id in (original, again):
        assert execute_job(engine, job_id, device=Device("cpu"), worker_host="test-host", data_dir=tmp_path,
                           leases=LeaseKeeper(engine, 0.2)) is JobStatus.SUCCEEDED
    with engine.connect() as connection:
        first, second = (jobs.find_job(connection, job_id) for job_id in (original, again))
        assert first.result == second.result and first.result["steps"] == 500
        assert first.provenance and first.provenance["torch"] == second.provenance["torch"]


def test_rerun_errors_are_one_line() -> None:
    for args, code, message in [(["rerun", "xyz"], 2, "is not a job id"), (["rerun", "abcdef"], 1, "no job abcdef"),
                                (["rerun", mnist_job(), "--device", "gpu"], 2, "--device")]:
        result = mlpq(*args)
        assert result.exit_code == code and message in result.output and len(result.output.strip().splitlines()) == 1

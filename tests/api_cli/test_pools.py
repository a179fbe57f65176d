"""Pools: ``mlpq submit --pool`` and ``mlpq worker --pool`` meet on ``mlpq.<pool>.<device>``."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result

from mlpq.api_cli.cli import cli
from mlpq.db import jobs
from mlpq.db.ledger import require_identity
from mlpq.db.engine import make_engine
from mlpq.devices import Device, DeviceError, parse_device, parse_pool, worker_queues
from tests.services import WorkerProcess, mlpq_command, run_mlpq, start_worker


def mlpq(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def ledger_of(url: str) -> str:
    with make_engine(url).connect() as connection:
        return require_identity(connection)


def stored_pool(job_id: str) -> str | None:
    with make_engine(os.environ["MLPQ_DATABASE_URL"]).connect() as connection:
        return jobs.find_job(connection, job_id).pool


def test_a_pool_names_its_own_queues() -> None:
    assert Device("cuda", 0, "a100").queue("l1") == "mlpq.l1.a100.cuda:0"
    assert parse_device("cpu", "lab-2").queue("l1") == "mlpq.l1.lab-2.cpu"
    assert parse_device("cuda:1").queue("l1") == "mlpq.l1.cuda:1"
    assert worker_queues(Device("cuda", 3, "h200"), "l1") == ["mlpq.l1.h200.cuda:3", "mlpq.l1.h200.cuda"]
    assert worker_queues(Device("cpu", pool="a"), "l1") == ["mlpq.l1.a.cpu"]


@pytest.mark.parametrize("bad", ["", "A100", "a.b", "a:b", "-x", "x" * 33, "a b"])
def test_malformed_pools_are_refused(bad: str) -> None:
    with pytest.raises(DeviceError, match="invalid pool"):
        parse_pool(bad)


def test_submit_with_a_pool_stores_it_and_queues_on_the_pools_queue(broker_url: str) -> None:
    result = mlpq("--broker-url", broker_url, "submit", "himmelblau", "--device", "cuda:1", "--pool", "a100",
                  "--json")
    assert result.exit_code == 0, result.output
    job_id = json.loads(result.output)["id"]
    assert json.loads(result.output)["pool"] == "a100" and stored_pool(job_id) == "a100"
    client, ledger = redis.Redis.from_url(broker_url), ledger_of(os.environ["MLPQ_DATABASE_URL"])
    assert client.llen(f"mlpq.{ledger}.a100.cuda:1") == 1 and client.llen(f"mlpq.{ledger}.cuda:1") == 0


def test_a_sweep_and_a_rerun_keep_the_pool(broker_url: str) -> None:
    result = mlpq("--broker-url", broker_url, "submit", "mnist", "--lr", "0.1,0.2", "--pool", "lab")
    assert result.exit_code == 0, result.output
    assert "(mnist on cpu in pool lab)" in result.output
    ids = [line.split()[0] for line in result.output.splitlines()[:2]]
    assert [stored_pool(job_id) for job_id in ids] == ["lab", "lab"]
    rerun = mlpq("--broker-url", broker_url, "rerun", ids[0], "--json")
    assert rerun.exit_code == 0, rerun.output
    assert stored_pool(json.loads(rerun.output)["id"]) == "lab"
    assert redis.Redis.from_url(broker_url).llen(f"mlpq.{ledger_of(os.environ['MLPQ_DATABASE_URL'])}.lab.cpu") == 3


def test_show_and_results_name_the_pool(broker_url: str) -> None:
    pooled = mlpq("--broker-url", broker_url, "submit", "himmelblau", "--pool", "a100").output.split()[0]
    plain = mlpq("--broker-url", broker_url, "submit", "himmelblau").output.split()[0]
    assert "device    cpu in pool a100" in mlpq("show", pooled).output
    assert "device    cpu\n" in mlpq("show", plain).output
    table = mlpq("results").output.splitlines()
    assert table[0].split()[:5] == ["ID", "KIND", "STATUS", "DEVICE", "POOL"]
    rows = {line.split()[0]: line.split()[4] for line in table[1:]}
    assert rows == {pooled[:12]: "a100", plain[:12]: "-"}
    listed = {row["id"]: row["pool"] for row in json.loads(mlpq("results", "--format", "json").output)}
    assert listed == {pooled: "a100", plain: None}


@pytest.mark.parametrize("args", [["submit", "himmelblau", "--pool", "Bad.Pool"],
                                  ["worker", "--pool", "x:y"], ["worker", "--hostname", "a@b"]])
def test_bad_pools_and_host_names_are_usage_errors_that_write_nothing(args: list[str]) -> None:
    result = mlpq(*args)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "invalid" in result.output


def test_workers_self_fails_when_no_worker_of_this_host_answers(broker_url: str) -> None:
    result = mlpq("--broker-url", broker_url, "workers", "--self", "--timeout", "0.2")
    assert result.exit_code == 1
    assert result.output.startswith("Error: no live worker on host ") and len(result.output.splitlines()) == 1


@pytest.fixture
def pool_worker(service_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    env = {**service_env, "MLPQ_HOSTNAME": "gpu-box-7"}
    worker = start_worker(env, tmp_path / "pool-worker.log", "--device", "cpu", "--pool", "lab")
    yield worker
    worker.stop()


@pytest.mark.integration
def test_a_pool_worker_runs_only_its_pools_jobs(pool_worker: WorkerProcess, service_env: dict[str, str]) -> None:
    env = {**service_env, "MLPQ_HOSTNAME": "gpu-box-7"}
    [listed] = json.loads(run_mlpq("workers", "--json", "--self", env=env).stdout)
    ledger = ledger_of(service_env["MLPQ_DATABASE_URL"])
    assert (listed["host"], listed["pool"], listed["queues"]) == ("gpu-box-7", "lab", [f"mlpq.{ledger}.lab.cpu"])
    assert run_mlpq("workers", "--self", env=service_env).returncode == 1  # this machine's own name: no worker
    done = run_mlpq("submit", "himmelblau", "--steps", "100", "--pool", "lab", "--wait", "--json", env=service_env)
    assert done.returncode == 0, done.stderr + pool_worker.log()
    ran = json.loads(done.stdout)
    assert (ran["pool"], ran["worker_host"], ran["status"]) == ("lab", "gpu-box-7", "succeeded")
    outside = json.loads(run_mlpq("submit", "himmelblau", "--steps", "100", "--json", env=service_env).stdout)
    try:
        subprocess.run(mlpq_command("submit", "himmelblau", "--pool", "ghost", "--wait"), env=service_env,
                       capture_output=True, text=True, timeout=25)
        raise AssertionError("--wait returned for a job no worker serves")
    except subprocess.TimeoutExpired as waited:
        stderr = waited.stderr.decode() if isinstance(waited.stderr, bytes) else (waited.stderr or "")
    assert "still queued: no live worker serves pool ghost on cpu (mlpq workers)" in stderr
    # Meanwhile the job submitted outside any pool was never taken by the pool's worker.
    shown = json.loads(run_mlpq("show", outside["id"], "--json", env=service_env).stdout)
    assert shown["status"] == "queued" and shown["worker_host"] is None

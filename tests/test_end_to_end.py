"""The whole slice as a user runs it: real ``mlpq`` processes, a real worker, real Redis, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest

from tests.services import WorkerProcess, queue_of, run_mlpq

pytestmark = pytest.mark.integration


def wait_until_finished(job_id: str, env: dict[str, str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = json.loads(run_mlpq("show", job_id, "--json", env=env).stdout)
        if detail["status"] in ("succeeded", "failed", "cancelled"):
            return detail
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")


def test_both_kinds_end_to_end(cpu_worker: WorkerProcess, service_env: dict[str, str]) -> None:
    submitted = run_mlpq("submit", "himmelblau", "--start", "4,0", "--lr", "0.01", "--steps", "3000",
                         "--log-every", "1000", "--json", env=service_env)
    assert submitted.returncode == 0, submitted.stderr
    himmelblau_id = json.loads(submitted.stdout)["id"]

    mnist = run_mlpq("submit", "mnist", "--epochs", "3", "--dataset", "mnist-sample", "--seed", "7",
                     "--variant", "functional", "--wait", "--json", env=service_env)
    assert mnist.returncode == 0, mnist.stderr + cpu_worker.log()
    detail = json.loads(mnist.stdout)
    assert detail["status"] == "succeeded" and detail["attempts"] == 1 and detail["worker_host"]
    assert detail["result"]["dataset"] == "mnist-sample"
    assert detail["result"]["dataset_sizes"] == {"train": 4000, "test": 1000}
    assert [m["step"] for m in detail["metrics"]] == [1, 2, 3]
    assert detail["result"]["test_accuracy"] == detail["metrics"][-1]["test_accuracy"] > 0.5

    himmelblau = wait_until_finished(himmelblau_id, service_env)
    assert himmelblau["status"] == "succeeded"
    assert himmelblau["result"]["nearest_minimum"] == [3.584428, -1.848126]
    assert himmelblau["result"]["distance"] < 1e-3 and himmelblau["result"]["f"] < 1e-4
    assert [m["step"] for m in himmelblau["metrics"]] == [0, 1000, 2000]

    listed = json.loads(run_mlpq("results", "--format", "json", env=service_env).stdout)
    assert [(r["id"], r["kind"], r["status"]) for r in listed] == [
        (detail["id"], "mnist", "succeeded"), (himmelblau_id, "himmelblau", "succeeded")]
    table = run_mlpq("results", env=service_env).stdout
    assert "test accuracy" in table and "f=" in table

    shown = run_mlpq("show", himmelblau_id[:7], env=service_env)
    assert shown.returncode == 0 and "nearest_minimum: [3.58443, -1.84813]" in shown.stdout

    workers = json.loads(run_mlpq("workers", "--json", env=service_env).stdout)
    assert [(w["device"], w["queues"]) for w in workers] == [("cpu", [queue_of("cpu", service_env)])]


def test_a_failed_job_under_wait_exits_1_with_its_reason(cpu_worker: WorkerProcess,
                                                         service_env: dict[str, str]) -> None:
    done = run_mlpq("submit", "himmelblau", "--optimizer", "sgd", "--lr", "5", "--steps", "50", "--log-every", "1",
                    "--wait", env=service_env)
    assert done.returncode == 1
    assert "status    failed" in done.stdout and "error     diverged: f is not finite" in done.stdout
    failed = json.loads(run_mlpq("results", "--status", "failed", "--format", "json", env=service_env).stdout)
    assert len(failed) == 1 and failed[0]["headline"].startswith("diverged")

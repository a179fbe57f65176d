"""``mlpq workers``: what each worker tells the registry of live workers (device, running jobs, torch threads, GPU
through NVML) and its queue's length; workers of one machine sharing its CPUs."""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from mlpq.api_cli.api import JobRequest
from mlpq.db.status import JobStatus
from mlpq.devices import Device
from mlpq.worker import nvml, registry, status
from tests.faults.helpers import client, finished
from tests.jobkinds import fault_kind
from tests.services import WorkerProcess, run_mlpq, start_worker


class FakeNVML(types.ModuleType):
    """The NVML calls ``gpu_info`` makes, answering for one 80 GiB GPU at host index 1."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.shut_down = False

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shut_down = True

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if index != 1:
            raise self.NVMLError("Invalid Argument")
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return b"NVIDIA A100-SXM4-80GB"

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return "GPU-5fd2c6a4-0d3c-7e1b-9a43-2f1e8b6c0d11"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return types.SimpleNamespace(used=1536 * nvml.MIB, total=81920 * nvml.MIB, free=80384 * nvml.MIB)


def test_gpu_info_reads_index_name_uuid_and_memory_through_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNVML()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert nvml.gpu_info(1) == {"index": 1, "name": "NVIDIA A100-SXM4-80GB",
                                "uuid": "GPU-5fd2c6a4-0d3c-7e1b-9a43-2f1e8b6c0d11", "memory_used_mib": 1536,
                                "memory_total_mib": 81920}
    assert fake.shut_down
    assert nvml.gpu_info(3) is None


def test_gpu_info_is_none_without_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # as if nvidia-ml-py were not installed
    assert nvml.gpu_info(0) is None


def test_gpu_info_is_none_on_a_host_without_an_nvidia_driver() -> None:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        assert nvml.gpu_info(0) is None
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this host has an NVIDIA driver")


def test_the_host_index_of_a_workers_gpu() -> None:
    assert status.host_gpu_index(Device("cpu"), None) is None
    assert status.host_gpu_index(Device("cuda", 1), None) == 1
    assert status.host_gpu_index(Device("cuda", 1), 0) == 0  # a container that reserved host GPU 1


def test_a_worker_reports_the_jobs_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    request = collections.namedtuple("request", "id")
    running = {request("b" * 32), request("a" * 32)}
    monkeypatch.setattr(status.worker_state, "active_requests", running)
    presence = status.Presence("redis://127.0.0.1:1/0", "3f2a9c1b04d7", "cuda0.7@box", "box", Device("cuda", 0), 2,
                               None, cpus=16, group="0123456789abcdef", fixed=2)
    assert presence.record().model_dump() == {
        "name": "cuda0.7@box", "host": "box", "device": "cuda:0", "pool": None,
        "queues": ["mlpq.3f2a9c1b04d7.cuda:0", "mlpq.3f2a9c1b04d7.cuda"], "active_jobs": ["a" * 32, "b" * 32],
        "state": "running", "concurrency": 2, "threads": 2, "gpu": None, "commands": False}
    presence.device = Device("cuda", 1, "a100")
    assert presence.record().queues == ["mlpq.3f2a9c1b04d7.a100.cuda:1", "mlpq.3f2a9c1b04d7.a100.cuda"]
    presence.commands = True
    assert presence.record().commands and presence.record().queues[2:] == [
        "mlpq.3f2a9c1b04d7.a100.cuda:1.commands", "mlpq.3f2a9c1b04d7.a100.cuda.commands"]


def submitted(env: dict[str, str], *args: str) -> str:
    done = run_mlpq("submit", *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["id"]


@pytest.mark.integration
def test_workers_shows_the_running_job_and_the_queue(cpu_worker: WorkerProcess, service_env: dict[str, str]) -> None:
    running = submitted(service_env, "mnist", "--epochs", "100", "--batch-size", "2", "--dataset", "mnist-sample")
    waiting = submitted(service_env, "mnist", "--epochs", "1", "--dataset", "mnist-sample")
    try:
        deadline = time.monotonic() + 60
        while True:
            found = json.loads(run_mlpq("workers", "--json", env=service_env).stdout or "[]")
            if (found and found[0]["active_jobs"]) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        [worker] = found
        assert worker["active_jobs"] == [running], cpu_worker.log()
        assert (worker["device"], worker["host"], worker["queued"]) == ("cpu", socket.gethostname(), 1)
        assert worker["gpu_name"] is None and worker["gpu_memory_total_mib"] is None
        assert (worker["concurrency"], worker["state"]) == (1, "running") and worker["threads"] >= 1
        table = run_mlpq("workers", env=service_env).stdout.splitlines()
        assert table[0].split() == ["HOST", "POOL", "DEVICE", "GPU", "RUNNING", "QUEUED", "THREADS", "COMMANDS",
                                    "NAME"]
        assert table[1].split()[:8] == [socket.gethostname(), "-", "cpu", "-", running[:12], "1",
                                        str(worker["threads"]), "no"]
    finally:
        run_mlpq("cancel", running, waiting, env=service_env)


@pytest.mark.integration
def test_a_worker_in_warm_shutdown_is_shown_stopping_until_its_job_ends(cpu_worker: WorkerProcess,
                                                                         service_env: dict[str, str]) -> None:
    running = submitted(service_env, "mnist", "--epochs", "100", "--batch-size", "2", "--dataset", "mnist-sample")

    def listed() -> list[dict]:
        return json.loads(run_mlpq("workers", "--json", env=service_env).stdout or "[]")

    deadline = time.monotonic() + 60
    while not any(w["active_jobs"] for w in listed()):
        assert time.monotonic() < deadline, cpu_worker.log()
        time.sleep(0.5)
    os.kill(cpu_worker.process.pid, signal.SIGTERM)  # warm shutdown: the job goes on, nothing new is taken
    deadline = time.monotonic() + 30
    while not (found := listed()) or found[0]["state"] != "stopping":
        assert time.monotonic() < deadline, f"{found}\n{cpu_worker.log()}"
        time.sleep(0.5)
    assert [(w["active_jobs"], w["device"]) for w in found] == [([running], "cpu")]
    assert "(stopping)" in run_mlpq("workers", env=service_env).stdout
    broker = redis.Redis.from_url(service_env["MLPQ_BROKER_URL"])
    key = registry.ledger_key(found[0]["queues"][0].split(".")[1])

    def expires() -> float:
        return json.loads(broker.hget(key, found[0]["name"]))["expires"]

    first, deadline = expires(), time.monotonic() + 30
    while expires() <= first:  # rewritten while the pool drains: it stays listed however long the job runs
        assert time.monotonic() < deadline, cpu_worker.log()
        time.sleep(0.2)
    broker.close()
    run_mlpq("cancel", running, env=service_env)
    cpu_worker.process.wait(60)
    assert listed() == []


def test_workers_name_a_gpu_as_show_does() -> None:
    from mlpq.api_cli.api import WorkerInfo
    from mlpq.api_cli.output import gpu_text, provenance_text

    uuid = "GPU-5fd2c6a4-0d3c-7e1b-9a43-2f1e8b6c0d11"
    worker = WorkerInfo("cuda1.7@box", "box", "cuda:1", None, ["mlpq.l1.cuda:1", "mlpq.l1.cuda"], [], 0, "NVIDIA H200",
                        1024, 143771, 1, uuid)
    assert gpu_text(worker) == "NVIDIA H200 #1 GPU-5fd2c6a4 1,024/143,771 MiB"
    about = {"computed_on": "cuda:1", "gpu": {"index": 1, "name": "NVIDIA H200", "uuid": uuid}}
    assert provenance_text(about) == "on cuda:1: NVIDIA H200 #1 GPU-5fd2c6a4"


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_two_live_workers_appear_share_the_cpus_and_vanish_when_stopped(service_env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    env = {name: value for name, value in fault_kind.worker_env(service_env).items() if name != "OMP_NUM_THREADS"}

    def listed() -> dict[str, dict[str, Any]]:
        return {w["pool"]: w for w in json.loads(run_mlpq("workers", "--json", env=env).stdout or "[]")}

    def until(wanted: Callable[[dict[str, dict[str, Any]]], bool], what: str) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + 30
        while not wanted(found := listed()):
            assert time.monotonic() < deadline, f"{what}: {found}"
            time.sleep(0.2)
        return found

    def threads_of_a_job(pool: str | None) -> int:
        with fault_kind.visible_here():
            [job] = client(env).submit_many([JobRequest("fault", {"action": "pid"}, "cpu", pool=pool)])
        ended = finished(env, job.id)
        assert ended.status is JobStatus.SUCCEEDED, ended.error
        return ended.result["threads"]

    alone = start_worker(env, tmp_path / "alone.log", "--device", "cpu")
    joined = None
    try:
        first = until(lambda found: set(found) == {None}, "the first worker listed")[None]
        assert {key: first[key] for key in ("host", "device", "concurrency", "threads", "state", "active_jobs")} == {
            "host": socket.gethostname(), "device": "cpu", "concurrency": 1, "threads": cpus, "state": "running",
            "active_jobs": []}
        assert first["name"].endswith(f".{alone.process.pid}@{socket.gethostname()}")
        assert threads_of_a_job(None) == cpus

        joined = start_worker(env, tmp_path / "joined.log", "--device", "cpu", "--pool", "lab")
        shared = max(1, cpus // 2)
        both = until(lambda found: set(found) == {None, "lab"} and {w["threads"] for w in found.values()} == {shared},
                     "both listed, sharing the CPUs")
        assert both["lab"]["queues"] == [first["queues"][0].replace(".cpu", ".lab.cpu")]
        assert threads_of_a_job(None) == shared  # decided as each job starts
        assert threads_of_a_job("lab") == shared

        joined.stop()
        until(lambda found: set(found) == {None} and found[None]["threads"] == cpus, "the second worker gone")
        alone.stop()
        until(lambda found: not found, "no worker listed")
    finally:
        for worker in (alone, joined):
            if worker is not None:
                worker.stop()

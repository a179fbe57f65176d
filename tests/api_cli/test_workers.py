"""``mlpq workers``: what each worker answers (device, running jobs, GPU through NVML) and its queue's length."""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import sys
import time
import types
from typing import Any

import pytest

from mlpq.devices import Device
from mlpq.worker import nvml, status
from tests.services import WorkerProcess, run_mlpq


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
    assert status.worker_status(Device("cuda", 0), "3f2a9c1b04d7", None) == {
        "device": "cuda:0", "ledger": "3f2a9c1b04d7", "pool": None,
        "queues": ["mlpq.3f2a9c1b04d7.cuda:0", "mlpq.3f2a9c1b04d7.cuda"], "active_jobs": ["a" * 32, "b" * 32],
        "gpu": None}
    assert status.worker_status(Device("cuda", 1, "a100"), "3f2a9c1b04d7", None)["queues"] == [
        "mlpq.3f2a9c1b04d7.a100.cuda:1", "mlpq.3f2a9c1b04d7.a100.cuda"]


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
            [worker] = json.loads(run_mlpq("workers", "--json", env=service_env).stdout)
            if worker["active_jobs"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert worker["active_jobs"] == [running], cpu_worker.log()
        assert (worker["device"], worker["host"], worker["queued"]) == ("cpu", socket.gethostname(), 1)
        assert worker["gpu_name"] is None and worker["gpu_memory_total_mib"] is None
        table = run_mlpq("workers", env=service_env).stdout.splitlines()
        assert table[0].split() == ["HOST", "POOL", "DEVICE", "GPU", "RUNNING", "QUEUED", "NAME"]
        assert table[1].split()[:6] == [socket.gethostname(), "-", "cpu", "-", running[:12], "1"]
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

"""A job records where it actually computed, and computing on the CPU inside a GPU worker creates no CUDA context."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sqlalchemy import Engine

from mlpq.api_cli.output import provenance_text
from mlpq.db.status import JobStatus
from mlpq.devices import Device
from mlpq.worker import provenance, recycle
from tests.worker.test_execute import add_job, run, engine, stored  # noqa: F401 (fixture)

H200 = {"index": 1, "name": "NVIDIA H200", "uuid": "GPU-5fd2c6a4-0d3c-7e1b-9a43-2f1e8b6c0d11",
        "memory_used_mib": 1024, "memory_total_mib": 143771}


@pytest.mark.parametrize(("worker", "reported", "said"), [
    (Device("cuda", 1), None, "cuda:1"),
    (Device("cuda", 1), "cuda:0", "cuda:1"),  # torch's name inside a pinned process is always cuda:0
    (Device("cuda", 1), "cpu (scalar engine)", "cpu (scalar engine) on a cuda:1 worker"),
    (Device("cpu"), "cpu (scalar engine)", "cpu (scalar engine)"),
    (Device("cpu"), None, "cpu"),
])
def test_where_a_job_computed(worker: Device, reported: str | None, said: str) -> None:
    assert provenance.computed_on(worker, reported) == said


def test_a_gpu_job_names_its_gpu_as_nvidia_smi_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provenance, "gpu_info", lambda index: H200 if index == 1 else None)
    about = provenance.describe(Device("cuda", 1), None, 1)
    assert (about["computed_on"], about["device_name"]) == ("cuda:1", "NVIDIA H200")
    assert about["gpu"] == {"index": 1, "name": "NVIDIA H200", "uuid": H200["uuid"]}
    assert " on cuda:1: NVIDIA H200 #1 GPU-5fd2c6a4 (host " in provenance_text(about)


def test_a_scalar_engine_job_on_a_gpu_worker_records_the_cpu_and_creates_no_cuda_context(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    def no_context(*_: object) -> None:
        raise AssertionError("the job initialised CUDA")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU worker (NVML-based, no context)
    monkeypatch.setattr(torch.cuda, "_lazy_init", no_context)
    monkeypatch.setattr(provenance, "gpu_info", no_context)
    job_id = add_job(engine, "himmelblau", {"starts": [[1, 1], [-1, 2]], "steps": 50, "log_every": 10},
                     device="cuda:1")
    assert run(engine, job_id, tmp_path, Device("cuda", 1)) is JobStatus.SUCCEEDED
    job, _ = stored(engine, job_id)
    assert job.result["engine"] == "scalar"  # the engine has one name, in the result and in the provenance
    assert job.provenance["computed_on"] == "cpu (scalar engine) on a cuda:1 worker"
    assert job.provenance["worker_device"] == "cuda:1" and job.provenance["gpu"] is None
    assert not torch.cuda.is_initialized()
    assert recycle.gpu_memory_held() is None  # the process would stay warm, with no context to check

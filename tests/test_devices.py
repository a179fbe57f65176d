"""Device strings and the queues their jobs go to."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlpq.devices import Device, DeviceError, parse_device, worker_queues


@pytest.mark.parametrize(("text", "device"), [
    ("cpu", Device("cpu")), ("cuda", Device("cuda")), ("cuda:0", Device("cuda", 0)),
    ("CUDA:12", Device("cuda", 12)), (" cuda:3 ", Device("cuda", 3)),
])
def test_parse(text: str, device: Device) -> None:
    assert parse_device(text) == device


@pytest.mark.parametrize("text", ["", "gpu", "cpu:0", "cuda:", "cuda:-1", "cuda:1.5", "cuda:123", "cuda0", "tpu:0",
                                  "cuda:٣", "cuda:０", "cuda:²", "cuda:1٣"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(DeviceError, match="use cpu, cuda or cuda:N"):
        parse_device(text)


def test_queues() -> None:
    assert worker_queues(Device("cpu"), "3f2a9c1b04d7") == ["mlpq.3f2a9c1b04d7.cpu"]
    assert worker_queues(Device("cuda", 1), "3f2a9c1b04d7") == ["mlpq.3f2a9c1b04d7.cuda:1", "mlpq.3f2a9c1b04d7.cuda"]


def test_the_device_grammar_loads_neither_the_worker_nor_torch() -> None:
    probe = ("import sys\nimport mlpq.devices\n"
             "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('mlpq.worker', 'celery'))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr

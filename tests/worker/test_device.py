"""Device strings, queues and process pinning; the CUDA paths are exercised up to the missing GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mlpq.worker.device import Device, DeviceError, parse_device, torch_device_name, worker_queues


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
    assert torch_device_name(Device("cuda", 3)) == "cuda:0"
    assert torch_device_name(Device("cpu")) == "cpu"


PIN_PROBE = """
import json, os, sys
from mlpq.worker.device import parse_device, pin_process
pin_process(parse_device(sys.argv[1]), None if sys.argv[2] == "-" else int(sys.argv[2]))
import torch
print(json.dumps({"visible": os.environ["CUDA_VISIBLE_DEVICES"], "order": os.environ["CUDA_DEVICE_ORDER"],
                  "cuda_initialised": torch.cuda.is_initialized()}))
"""


@pytest.mark.parametrize(("device", "gpu_index", "visible"), [("cpu", "-", ""), ("cuda:2", "-", "2"),
                                                               ("cuda:2", "0", "0")])
def test_pinning_sets_visible_devices_in_nvidia_smi_order_before_torch(device: str, gpu_index: str, visible: str) -> None:
    done = subprocess.run([sys.executable, "-c", PIN_PROBE, device, gpu_index], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if not k.startswith("CUDA_")}, check=True)
    assert json.loads(done.stdout) == {"visible": visible, "order": "PCI_BUS_ID", "cuda_initialised": False}


def test_pinning_after_torch_import_is_refused() -> None:
    probe = "import torch\nfrom mlpq.worker.device import Device, pin_process\npin_process(Device('cuda', 0))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode != 0 and "before torch is imported" in done.stderr

"""Pinning a process to one GPU, and the torch device a pinned job uses; the CUDA paths are exercised up to
the missing GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mlpq.devices import Device
from mlpq.worker.device import torch_device_name


def test_a_pinned_job_uses_cuda_0_or_the_cpu() -> None:
    assert torch_device_name(Device("cuda", 3)) == "cuda:0"
    assert torch_device_name(Device("cpu")) == "cpu"


PIN_PROBE = """
import json, os, sys
from mlpq.devices import parse_device
from mlpq.worker.device import pin_process
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
    probe = ("import torch\nfrom mlpq.devices import Device\nfrom mlpq.worker.device import pin_process\n"
             "pin_process(Device('cuda', 0))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode != 0 and "before torch is imported" in done.stderr

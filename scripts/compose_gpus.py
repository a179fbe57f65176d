#!/usr/bin/env python3
"""Write a Compose override with one mlpq worker per GPU of this host, from ``nvidia-smi -L``.

    nvidia-smi -L | python3 scripts/compose_gpus.py main   > docker-compose.gpus.yml   # the main host
    nvidia-smi -L | python3 scripts/compose_gpus.py worker > docker-compose.gpus.yml   # a worker host
    docker compose -f docker-compose.yml -f docker-compose.gpus.yml up -d

Service ``worker-gpuN`` reserves host GPU N only and serves ``cuda:N``; inside its container that GPU
is index 0, hence ``--gpu-index 0``. With no GPU (empty input) the override adds nothing, so the same
commands work on 0, 1 or 8 GPUs. Only the standard library: runs with any Python 3 on the host.
"""

from __future__ import annotations

import re
import sys

GPU_LINE = re.compile(r"GPU (\d+): ")
"""``GPU 0: NVIDIA H200 (UUID: GPU-…)``; MIG lines below a GPU are indented and skipped."""

ROLES = {
    # Must match worker-cpu in docker-compose.yml (tests/test_compose.py compares them).
    "main": {
        "file": "docker-compose.yml",
        "environment": {
            "MLPQ_BROKER_URL": "redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}@redis:6379/0",
            "MLPQ_DATABASE_URL": "postgresql://mlpq:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"
                                 "@postgres:5432/mlpq",
            "MLPQ_DATA_DIR": "/data",
            "MLPQ_HOSTNAME": "${MLPQ_HOSTNAME:-}",
            "MLPQ_ALLOW_COMMANDS": "${MLPQ_ALLOW_COMMANDS:-}",
        },
        "volumes": ["mlpq-data:/data"],
        "extra": ["    networks: [backend, egress]",
                  "    depends_on:",
                  "      redis: {condition: service_healthy}",
                  "      postgres: {condition: service_healthy}"],
    },
    # Must match worker-cpu in docker-compose.worker.yml.
    "worker": {
        "file": "docker-compose.worker.yml",
        "environment": {
            "MLPQ_BROKER_URL": "${MLPQ_BROKER_URL:?set MLPQ_BROKER_URL in .env}",
            "MLPQ_DATABASE_URL": "${MLPQ_DATABASE_URL:?set MLPQ_DATABASE_URL in .env}",
            "MLPQ_DATA_DIR": "/data",
            "MLPQ_POOL": "${MLPQ_POOL:-}",
            "MLPQ_HOSTNAME": "${MLPQ_HOSTNAME:-}",
            "MLPQ_ALLOW_COMMANDS": "${MLPQ_ALLOW_COMMANDS:-}",
        },
        "volumes": ["mlpq-data:/data", "${MLPQ_CERTS_DIR:-./certs}:/certs:ro"],
        "extra": [],
    },
}


def gpu_indices(nvidia_smi_list: str) -> list[int]:
    """The host indices of the GPUs ``nvidia-smi -L`` lists, in order."""
    return [int(match[1]) for line in nvidia_smi_list.splitlines() if (match := GPU_LINE.match(line))]


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def worker_service(role: str, index: int) -> list[str]:
    spec = ROLES[role]
    return [
        f"  worker-gpu{index}:",
        "    image: ${MLPQ_IMAGE:-mlpq:latest}",
        "    build: .",
        f'    command: ["mlpq", "worker", "--device", "cuda:{index}", "--gpu-index", "0"]',
        "    environment:",
        *(f"      {name}: {quoted(value)}" for name, value in spec["environment"].items()),
        "    volumes:",
        *(f"      - {quoted(volume)}" for volume in spec["volumes"]),
        *spec["extra"],
        "    init: true",
        "    restart: unless-stopped",
        "    stop_grace_period: 2m",
        "    deploy:",
        "      resources:",
        "        reservations:",
        "          devices:",
        f'            - {{driver: nvidia, device_ids: ["{index}"], capabilities: [gpu]}}',
    ]


def override(role: str, indices: list[int]) -> str:
    """The override file's text for ``role`` (main or worker) and these host GPU indices."""
    lines = [f"# Written by scripts/compose_gpus.py {role} from `nvidia-smi -L`: {len(indices)} GPU(s).",
             f"# Use with: docker compose -f {ROLES[role]['file']} -f docker-compose.gpus.yml up -d",
             "# Write it again when this host's GPUs change.",
             "services:"]
    if not indices:
        lines.append("  worker-cpu: {}   # no GPU on this host: nothing to add")
    for index in indices:
        lines += worker_service(role, index)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ROLES:
        print(f"usage: nvidia-smi -L | {sys.argv[0]} main|worker > docker-compose.gpus.yml", file=sys.stderr)
        return 2
    sys.stdout.write(override(argv[0], gpu_indices(sys.stdin.read())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

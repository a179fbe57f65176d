"""docker-compose.yml, as docker-compose itself resolves it (`docker-compose config`). Needs no Docker engine.

docker-compose (v1.28+, e.g. Debian's `apt-get install docker-compose`) must be on PATH: these tests
fail rather than skip without it, so CI cannot pass them by accident.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

REDIS_PASSWORD = "redis-secret-1f3a"
POSTGRES_PASSWORD = "postgres-secret-9c2d"
PASSWORDS = {"REDIS_PASSWORD": REDIS_PASSWORD, "POSTGRES_PASSWORD": POSTGRES_PASSWORD}

MLPQ_SERVICES = {"worker-cpu", "worker-gpu0", "worker-gpu1", "cli"}
EXPECTED_SERVICES = {"redis", "postgres", "flower"} | MLPQ_SERVICES
GPU_WORKER = re.compile(r"worker-gpu(\d+)")

# Variables from the caller's shell that would change what docker-compose resolves.
LEAKY_VARIABLES = ("REDIS_PASSWORD", "POSTGRES_PASSWORD", "MLPQ_IMAGE", "COMPOSE_FILE", "COMPOSE_PROFILES",
                   "COMPOSE_PROJECT_NAME", "COMPOSE_PATH_SEPARATOR")


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail("docker-compose is not on PATH: install it (`apt-get install docker-compose`, v1.28+) "
                    "to check docker-compose.yml", pytrace=False)
    return path


def compose(args: list[str], env: Mapping[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``docker-compose -f docker-compose.yml ARGS`` with exactly ``env`` for the passwords.

    An empty ``--env-file`` keeps a developer's own ``.env`` out of the result.
    """
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    full_env = {k: v for k, v in os.environ.items() if k not in LEAKY_VARIABLES} | dict(env)
    return subprocess.run([docker_compose(), "-f", str(COMPOSE_FILE), "--env-file", str(empty_env_file), *args],
                          cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60)


def resolved(tmp_path: Path, env: Mapping[str, str] = PASSWORDS, *extra: str) -> dict[str, Any]:
    done = compose(["config", *extra], env, tmp_path)
    assert done.returncode == 0, f"docker-compose config failed:\n{done.stderr}"
    return yaml.safe_load(done.stdout)


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    return resolved(tmp_path)


@pytest.fixture
def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return config["services"]


def gpu_workers(services: Mapping[str, Any]) -> dict[str, int]:
    """``worker-gpuN`` service name -> N."""
    return {name: int(match[1]) for name in services if (match := GPU_WORKER.fullmatch(name))}


def published_ports(service: Mapping[str, Any]) -> list[Any]:
    return list(service.get("ports") or [])


def test_config_is_valid_and_has_the_expected_services(services: dict[str, Any]) -> None:
    assert set(services) == EXPECTED_SERVICES


def test_two_gpu_workers_on_devices_0_and_1(services: dict[str, Any]) -> None:
    assert gpu_workers(services) == {"worker-gpu0": 0, "worker-gpu1": 1}


@pytest.mark.parametrize("name", ["worker-gpu0", "worker-gpu1"])
def test_gpu_worker_reserves_exactly_its_gpu_and_sees_it_as_index_0(services: dict[str, Any], name: str) -> None:
    n = gpu_workers(services)[name]
    worker = services[name]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "device_ids": [str(n)], "capabilities": ["gpu"]}]
    assert worker["command"] == ["mlpq", "worker", "--device", f"cuda:{n}", "--gpu-index", "0"]


def test_every_gpu_worker_has_a_gpu_of_its_own(services: dict[str, Any]) -> None:
    """Catches a copied worker-gpuN block whose device_ids or cuda:N was not changed."""
    reserved = {name: services[name]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"]
                for name in gpu_workers(services)}
    assert reserved == {name: [str(n)] for name, n in gpu_workers(services).items()}


def test_cpu_worker_reserves_no_gpu(services: dict[str, Any]) -> None:
    worker = services["worker-cpu"]
    assert worker["command"] == ["mlpq", "worker", "--device", "cpu"]
    assert "devices" not in worker.get("deploy", {}).get("resources", {}).get("reservations", {})


@pytest.mark.parametrize("name", ["redis", "postgres"])
def test_redis_and_postgres_publish_no_ports_and_sit_on_an_internal_network(config: dict[str, Any],
                                                                            name: str) -> None:
    service = config["services"][name]
    assert published_ports(service) == []
    assert "network_mode" not in service
    assert set(service["networks"]) == {"backend"}
    assert config["networks"]["backend"].get("internal") is True


def test_only_flower_publishes_a_port_and_only_on_loopback(services: dict[str, Any]) -> None:
    publishing = {name for name, service in services.items() if published_ports(service)}
    assert publishing == {"flower"}
    for port in published_ports(services["flower"]):
        # docker-compose v1 prints "127.0.0.1:5555:5555/tcp"; Compose v2 a mapping with host_ip.
        host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
        assert host_ip == "127.0.0.1", port


def test_redis_requires_the_password_from_the_environment_and_persists(services: dict[str, Any]) -> None:
    redis = services["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--requirepass") + 1] == REDIS_PASSWORD
    assert command[command.index("--appendonly") + 1] == "yes"
    assert redis["environment"]["REDISCLI_AUTH"] == REDIS_PASSWORD
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])
    assert any(str(volume).startswith("redis-data:/data") for volume in redis["volumes"])


def test_postgres_takes_the_password_from_the_environment(services: dict[str, Any]) -> None:
    postgres = services["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD"] == POSTGRES_PASSWORD
    assert postgres["environment"]["POSTGRES_USER"] == postgres["environment"]["POSTGRES_DB"] == "mlpq"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(str(volume).startswith("postgres-data:/var/lib/postgresql/data") for volume in postgres["volumes"])


@pytest.mark.parametrize("name", sorted(MLPQ_SERVICES))
def test_mlpq_services_share_one_environment_and_data_volume(services: dict[str, Any], name: str) -> None:
    service = services[name]
    assert service["environment"] == {
        "MLPQ_BROKER_URL": f"redis://:{REDIS_PASSWORD}@redis:6379/0",
        "MLPQ_DATABASE_URL": f"postgresql://mlpq:{POSTGRES_PASSWORD}@postgres:5432/mlpq",
        "MLPQ_DATA_DIR": "/data",
    }
    assert any(str(volume).startswith("mlpq-data:/data") for volume in service["volumes"])
    assert {dep: spec["condition"] for dep, spec in service["depends_on"].items()} == {
        "redis": "service_healthy", "postgres": "service_healthy"}
    assert "backend" in service["networks"]


@pytest.mark.parametrize("name", ["worker-cpu", "worker-gpu0", "worker-gpu1"])
def test_workers_restart_unless_stopped(services: dict[str, Any], name: str) -> None:
    assert services[name]["restart"] == "unless-stopped"


def test_no_password_is_written_in_the_file(tmp_path: Path) -> None:
    raw = resolved(tmp_path, PASSWORDS, "--no-interpolate")["services"]
    assert "${REDIS_PASSWORD:?" in raw["worker-cpu"]["environment"]["MLPQ_BROKER_URL"]
    assert "${POSTGRES_PASSWORD:?" in raw["worker-cpu"]["environment"]["MLPQ_DATABASE_URL"]
    assert "${POSTGRES_PASSWORD:?" in raw["postgres"]["environment"]["POSTGRES_PASSWORD"]
    text = COMPOSE_FILE.read_text()
    assert REDIS_PASSWORD not in text and POSTGRES_PASSWORD not in text


@pytest.mark.parametrize("missing", sorted(PASSWORDS))
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_config_fails_clearly_without_a_password(tmp_path: Path, missing: str, how: str) -> None:
    env = {k: v for k, v in PASSWORDS.items() if k != missing}
    if how == "empty":
        env[missing] = ""
    done = compose(["config"], env, tmp_path)
    assert done.returncode != 0
    assert f"set {missing} in .env" in done.stderr


def test_env_example_sets_both_passwords(tmp_path: Path) -> None:
    done = subprocess.run([docker_compose(), "-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
                          cwd=ROOT, env={k: v for k, v in os.environ.items() if k not in LEAKY_VARIABLES},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_cli_and_flower_are_opt_in_profiles(services: dict[str, Any], tmp_path: Path) -> None:
    profiles = {name: service.get("profiles") for name, service in services.items() if service.get("profiles")}
    assert profiles == {"cli": ["cli"], "flower": ["flower"]}
    done = compose(["config", "--profiles"], PASSWORDS, tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["cli", "flower"]


def test_cli_service_is_not_restarted(services: dict[str, Any]) -> None:
    assert services["cli"].get("restart", "no") == "no"

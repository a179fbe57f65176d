"""The Compose files, as docker-compose itself resolves them (`docker-compose config`). Needs no Docker engine.

docker-compose.yml (main host), docker-compose.worker.yml (worker hosts), docker-compose.expose.yml (main
host with remote workers) and the GPU override scripts/compose_gpus.py writes from `nvidia-smi -L`.

docker-compose (v1.28+, e.g. Debian's `apt-get install docker-compose`) must be on PATH: these tests
fail rather than skip without it, so CI cannot pass them by accident.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
WORKER_FILE = ROOT / "docker-compose.worker.yml"
EXPOSE_FILE = ROOT / "docker-compose.expose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
WORKER_ENV_EXAMPLE = ROOT / ".env.worker.example"

REDIS_PASSWORD = "redis-secret-1f3a"
POSTGRES_PASSWORD = "postgres-secret-9c2d"
PASSWORDS = {"REDIS_PASSWORD": REDIS_PASSWORD, "POSTGRES_PASSWORD": POSTGRES_PASSWORD}

MLPQ_SERVICES = {"worker-cpu", "cli"}
EXPECTED_SERVICES = {"redis", "postgres", "flower", "ui"} | MLPQ_SERVICES
GPU_WORKER = re.compile(r"worker-gpu(\d+)")

# Variables from the caller's shell that would change what docker-compose resolves.
LEAKY_VARIABLES = ("REDIS_PASSWORD", "POSTGRES_PASSWORD", "MLPQ_IMAGE", "MLPQ_BROKER_URL", "MLPQ_DATABASE_URL",
                   "MLPQ_BIND_ADDRESS", "MLPQ_POOL", "MLPQ_HOSTNAME", "MLPQ_ALLOW_COMMANDS", "MLPQ_CERTS_DIR", "COMPOSE_FILE",
                   "COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME", "COMPOSE_PATH_SEPARATOR")


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail("docker-compose is not on PATH: install it (`apt-get install docker-compose`, v1.28+) "
                    "to check docker-compose.yml", pytrace=False)
    return path


def compose(args: list[str], env: Mapping[str, str], tmp_path: Path,
            files: Sequence[Path] = (COMPOSE_FILE,)) -> subprocess.CompletedProcess[str]:
    """Run ``docker-compose -f FILE... ARGS`` with exactly ``env`` for the passwords and URLs.

    An empty ``--env-file`` keeps a developer's own ``.env`` out of the result.
    """
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    full_env = {k: v for k, v in os.environ.items() if k not in LEAKY_VARIABLES} | dict(env)
    file_args = [arg for path in files for arg in ("-f", str(path))]
    return subprocess.run([docker_compose(), *file_args, "--project-directory", str(ROOT),
                           "--env-file", str(empty_env_file), *args],
                          cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60)


def resolved(tmp_path: Path, env: Mapping[str, str] = PASSWORDS, *extra: str,
             files: Sequence[Path] = (COMPOSE_FILE,)) -> dict[str, Any]:
    done = compose(["config", *extra], env, tmp_path, files)
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


def test_only_flower_and_ui_publish_a_port_and_only_on_loopback(services: dict[str, Any]) -> None:
    publishing = {name for name, service in services.items() if published_ports(service)}
    assert publishing == {"flower", "ui"}
    for port in published_ports(services["flower"]) + published_ports(services["ui"]):
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
        "MLPQ_HOSTNAME": "",
        "MLPQ_ALLOW_COMMANDS": "",
    }
    assert any(str(volume).startswith("mlpq-data:/data") for volume in service["volumes"])
    assert {dep: spec["condition"] for dep, spec in service["depends_on"].items()} == {
        "redis": "service_healthy", "postgres": "service_healthy"}
    assert "backend" in service["networks"]


@pytest.mark.parametrize("name", ["worker-cpu"])
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
    assert profiles == {"cli": ["cli"], "flower": ["flower"], "ui": ["ui"]}
    done = compose(["config", "--profiles"], PASSWORDS, tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["cli", "flower", "ui"]


@pytest.mark.parametrize(("token", "actions"), [("", False), ("ui-token-7e1", True)])
def test_ui_serves_the_ledger_with_the_token_from_the_environment(tmp_path: Path, token: str, actions: bool) -> None:
    ui = resolved(tmp_path, {**PASSWORDS, "MLPQ_UI_TOKEN": token})["services"]["ui"]
    assert ui["environment"]["MLPQ_UI_TOKEN"] == token
    assert ui["environment"]["MLPQ_DATABASE_URL"] == f"postgresql://mlpq:{POSTGRES_PASSWORD}@postgres:5432/mlpq"
    script = ui["command"][-1].replace("$$", "$")  # docker-compose v1's config keeps the file's escape
    assert script.startswith("exec mlpq ui --host 0.0.0.0 --port 8765")
    done = subprocess.run(["sh", "-c", script.replace("exec mlpq", "echo mlpq")], env={"MLPQ_UI_TOKEN": token},
                          capture_output=True, text=True)
    assert ("--allow-actions" in done.stdout) is actions


def test_cli_service_is_not_restarted(services: dict[str, Any]) -> None:
    assert services["cli"].get("restart", "no") == "no"


# --- GPU workers that match the host: scripts/compose_gpus.py, fed by a fake nvidia-smi ---------------------

WORKER_URLS = {"MLPQ_BROKER_URL": "rediss://:pw@10.8.0.1:6379/0?ssl_cert_reqs=required&ssl_ca_certs=/certs/ca.pem",
               "MLPQ_DATABASE_URL": "postgresql://mlpq:pw@10.8.0.1:5432/mlpq?sslmode=require"}
ROLE_FILES = {"main": (COMPOSE_FILE, PASSWORDS), "worker": (WORKER_FILE, WORKER_URLS)}


def fake_nvidia_smi_list(gpus: int) -> str:
    """What ``nvidia-smi -L`` prints for ``gpus`` H200s, the second one split into MIG devices."""
    lines = []
    for index in range(gpus):
        lines.append(f"GPU {index}: NVIDIA H200 (UUID: GPU-5e1f0c4a-7d1e-4c1b-9a55-00000000000{index})")
        if index == 1:
            lines.append("  MIG 3g.71gb     Device  0: (UUID: MIG-0f3c1a2b-1111-2222-3333-444444444444)")
    return "\n".join(lines) + ("\n" if lines else "")


def gpu_override(tmp_path: Path, role: str, gpus: int) -> Path:
    """Run the documented ``nvidia-smi -L | python3 scripts/compose_gpus.py ROLE > docker-compose.gpus.yml``
    with a fake nvidia-smi on PATH (none at all for 0 GPUs, as on a host without the driver)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if gpus:
        listing = tmp_path / "nvidia-smi-L.txt"
        listing.write_text(fake_nvidia_smi_list(gpus))
        fake = bin_dir / "nvidia-smi"
        fake.write_text(f'#!/bin/sh\n[ "$1" = -L ] && exec cat {listing}\nexit 9\n')
        fake.chmod(0o755)
    out = tmp_path / f"docker-compose.gpus.{role}{gpus}.yml"
    done = subprocess.run(["bash", "-c", f"nvidia-smi -L | python3 scripts/compose_gpus.py {role} > {out}"],
                          cwd=ROOT, env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("role", sorted(ROLE_FILES))
@pytest.mark.parametrize("gpus", [0, 1, 8])
def test_the_gpu_override_gives_one_worker_per_gpu_of_the_host(tmp_path: Path, role: str, gpus: int) -> None:
    base, env = ROLE_FILES[role]
    services = resolved(tmp_path, env, files=(base, gpu_override(tmp_path, role, gpus)))["services"]
    assert gpu_workers(services) == {f"worker-gpu{n}": n for n in range(gpus)}
    cpu = {key: value for key, value in services["worker-cpu"].items() if key != "command"}
    for name, n in gpu_workers(services).items():
        worker = services[name]
        assert worker["deploy"]["resources"]["reservations"]["devices"] == [
            {"driver": "nvidia", "device_ids": [str(n)], "capabilities": ["gpu"]}]
        assert worker["command"] == ["mlpq", "worker", "--device", f"cuda:{n}", "--gpu-index", "0"]
        # Everything else is the CPU worker's: same image, URLs, volumes, networks, dependencies, shutdown.
        same = {key: value for key, value in worker.items() if key not in ("command", "deploy")}
        assert same == cpu, f"{name} drifted from worker-cpu: edit ROLES in scripts/compose_gpus.py"
    assert "deploy" not in cpu and services["worker-cpu"]["command"][-1] == "cpu"


def test_the_gpu_override_without_a_role_is_a_usage_error() -> None:
    done = subprocess.run(["python3", "scripts/compose_gpus.py"], cwd=ROOT, input="", capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("usage: ")


# --- docker-compose.worker.yml: a host with workers only -----------------------------------------------------

def test_the_worker_file_runs_workers_only_from_the_two_urls(tmp_path: Path) -> None:
    config = resolved(tmp_path, WORKER_URLS, files=(WORKER_FILE,))
    services = config["services"]
    assert set(services) == {"worker-cpu", "cli"}
    for service in services.values():
        assert "depends_on" not in service
        assert {key: service["environment"][key] for key in WORKER_URLS} == WORKER_URLS
        assert any(str(volume).startswith("mlpq-data:/data") for volume in service["volumes"])
    worker = services["worker-cpu"]
    assert worker["command"] == ["mlpq", "worker", "--device", "cpu"]
    assert worker["environment"]["MLPQ_POOL"] == "" and worker["stop_grace_period"] == "2m"
    assert services["cli"]["profiles"] == ["cli"]
    assert "redis" not in str(config.get("volumes")) and "postgres" not in str(config.get("volumes"))


def test_the_worker_file_takes_a_pool(tmp_path: Path) -> None:
    services = resolved(tmp_path, {**WORKER_URLS, "MLPQ_POOL": "a100-box"}, files=(WORKER_FILE,))["services"]
    assert services["worker-cpu"]["environment"]["MLPQ_POOL"] == "a100-box"


@pytest.mark.parametrize(("env", "files"), [(PASSWORDS, (COMPOSE_FILE,)), (WORKER_URLS, (WORKER_FILE,))])
def test_workers_run_commands_only_when_told(tmp_path: Path, env: Mapping[str, str], files: Sequence[Path]) -> None:
    assert resolved(tmp_path, env, files=files)["services"]["worker-cpu"]["environment"]["MLPQ_ALLOW_COMMANDS"] == ""
    allowed = resolved(tmp_path, {**env, "MLPQ_ALLOW_COMMANDS": "1"}, files=files)["services"]
    assert allowed["worker-cpu"]["environment"]["MLPQ_ALLOW_COMMANDS"] == "1"


@pytest.mark.parametrize("missing", sorted(WORKER_URLS))
def test_the_worker_file_fails_clearly_without_a_url(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in WORKER_URLS.items() if k != missing}
    done = compose(["config"], env, tmp_path, (WORKER_FILE,))
    assert done.returncode != 0 and f"set {missing} in .env" in done.stderr


def test_worker_env_example_validates(tmp_path: Path) -> None:
    done = subprocess.run([docker_compose(), "-f", str(WORKER_FILE), "--env-file", str(WORKER_ENV_EXAMPLE),
                           "config", "-q"], cwd=ROOT,
                          env={k: v for k, v in os.environ.items() if k not in LEAKY_VARIABLES},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --- docker-compose.expose.yml: Redis and PostgreSQL on one named address ------------------------------------

def test_expose_publishes_redis_and_postgres_on_the_bind_address_only(tmp_path: Path) -> None:
    config = resolved(tmp_path, {**PASSWORDS, "MLPQ_BIND_ADDRESS": "10.8.0.1"}, files=(COMPOSE_FILE, EXPOSE_FILE))
    services = config["services"]
    publishing = {name: published_ports(service) for name, service in services.items() if published_ports(service)}
    assert set(publishing) == {"redis", "postgres", "flower", "ui"}
    for name in ("flower", "ui"):  # the expose file leaves their loopback ports alone
        assert published_ports(services[name]) == published_ports(resolved(tmp_path, PASSWORDS)["services"][name])
    for name, port in (("redis", 6379), ("postgres", 5432)):
        [published] = publishing[name]
        if isinstance(published, dict):  # Compose v2
            assert (published["host_ip"], int(published["published"]), published["target"]) == ("10.8.0.1", port, port)
        else:  # docker-compose v1: "10.8.0.1:6379:6379/tcp"
            assert str(published).split("/")[0] == f"10.8.0.1:{port}:{port}"
        assert set(services[name]["networks"]) == {"backend", "published"}
    assert not config["networks"]["published"].get("internal")
    assert config["networks"]["backend"].get("internal") is True  # the workers' network stays internal


@pytest.mark.parametrize("how", ["unset", "empty"])
def test_expose_has_no_default_bind_address(tmp_path: Path, how: str) -> None:
    env = dict(PASSWORDS) | ({"MLPQ_BIND_ADDRESS": ""} if how == "empty" else {})
    done = compose(["config"], env, tmp_path, (COMPOSE_FILE, EXPOSE_FILE))
    assert done.returncode != 0 and "set MLPQ_BIND_ADDRESS in .env" in done.stderr
    assert "${MLPQ_BIND_ADDRESS:-" not in EXPOSE_FILE.read_text()  # no default of any kind

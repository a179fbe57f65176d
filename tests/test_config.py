"""MLPQ_* settings: parsed and checked once at start by pydantic-settings; a bad one is exit 2 naming it,
an unknown one a warning naming the closest setting."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import mlpq
from mlpq.api_cli import cli as cli_module
from mlpq.api_cli.api import Client
from mlpq.api_cli.cli import cli
from mlpq.config import ENV_PREFIX, OTHER_VARIABLES, Settings, SettingsError
from tests.faults.conftest import FAST_LEASES
from tests.services import run_mlpq

BAD_SETTINGS = [
    ("MLPQ_LEASE_SECONDS", "-1", "greater than or equal to 1"),
    ("MLPQ_LEASE_SECONDS", "abc", "valid number"),
    ("MLPQ_LEASE_SECONDS", "nan", "finite number"),
    ("MLPQ_HEARTBEAT_SECONDS", "0", "greater than or equal to 0.05"),
    ("MLPQ_HEARTBEAT_SECONDS", "30", "at most a third of MLPQ_LEASE_SECONDS (60)"),
    ("MLPQ_MAINTENANCE_SECONDS", "61", "at most MLPQ_LEASE_SECONDS (60)"),
    ("MLPQ_DB_RETRY_SECONDS", "-1", "greater than or equal to 0"),
    ("MLPQ_HARD_LIMIT_GRACE_SECONDS", "0", "greater than or equal to 1"),
    ("MLPQ_MAX_ATTEMPTS", "-5", "greater than or equal to 1"),
    ("MLPQ_MAX_ATTEMPTS", "0", "greater than or equal to 1"),
    ("MLPQ_MAX_ATTEMPTS", "2.5", "valid integer"),
    ("MLPQ_GPU_INDEX", "abc", "valid integer"),
    ("MLPQ_BROKER_URL", "redis://localhost:abc/0", "the port is not a number"),
    ("MLPQ_BROKER_URL", "http://localhost", "malformed broker URL"),
    ("MLPQ_BROKER_URL", "rediss://localhost:6380/0?ssl_ca_cert=/ca.pem", "did you mean ssl_ca_certs?"),
    ("MLPQ_DATABASE_URL", "postgresql://u@h:abc/db", "malformed database URL"),
    ("MLPQ_DATABASE_URL", "sqlite://", "in-memory SQLite database, which cannot hold a ledger"),
    ("MLPQ_DATABASE_URL", "sqlite:///:memory:", "in-memory SQLite database, which cannot hold a ledger"),
    ("MLPQ_DATABASE_URL", "postgresql+asyncpg://u@h/db", "unsupported database driver 'postgresql+asyncpg'"),
    ("MLPQ_HOSTNAME", "gpu box", "invalid host name 'gpu box'"),
    ("MLPQ_POOL", "A100!", "invalid pool 'A100!'"),
    ("MLPQ_DEBUG", "maybe", "valid boolean"),
    ("MLPQ_DATA_DIR", "relative/data", "not an absolute path"),
    ("MLPQ_DATA_DIR", "/etc", "system directory /etc"),
]


@pytest.mark.parametrize(("name", "value", "rule"), BAD_SETTINGS)
def test_a_bad_setting_is_exit_2_naming_the_variable_and_the_rule(name: str, value: str, rule: str) -> None:
    result = CliRunner().invoke(cli, ["results"], env={name: value})
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: {name}") and rule in line, line


@pytest.mark.parametrize(("name", "value", "rule"), BAD_SETTINGS)
def test_settings_from_a_mapping_raise_settings_error(name: str, value: str, rule: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_defaults_and_the_fast_test_leases_are_valid_and_empty_means_unset() -> None:
    assert Settings.from_env({}).leases.lease_s == 60
    fast = Settings.from_env({**FAST_LEASES, "MLPQ_MAX_ATTEMPTS": ""}).leases
    assert (fast.lease_s, fast.heartbeat_s, fast.maintenance_s, fast.db_retry_s, fast.max_attempts) == (3, 0.5, 1, 2, 3)


def test_an_override_wins_over_a_bad_variable() -> None:
    settings = Settings.from_env({"MLPQ_BROKER_URL": "nonsense"}, broker_url="redis://h:1/2")
    assert settings.broker_url == "redis://h:1/2"


def test_help_does_not_load_pydantic_settings() -> None:
    probe = ("import sys\nfrom mlpq.api_cli.cli import cli\ncli.main(['--help'], standalone_mode=False)\n"
             "print('LOADED' if 'pydantic_settings' in sys.modules else 'NOT-LOADED')")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "NOT-LOADED", done.stderr


@pytest.mark.parametrize(("name", "closest"), [
    ("MLPQ_LEASE_SECOND", "MLPQ_LEASE_SECONDS"), ("MLPQ_DATABSE_URL", "MLPQ_DATABASE_URL"),
    ("mlpq_broker", "MLPQ_BROKER_URL"), ("MLPQ_HOST", "MLPQ_HOSTNAME"), ("MLPQ_NOTHING_LIKE_IT", None),
])
def test_an_unknown_variable_is_one_warning_naming_the_closest_setting(name: str, closest: str | None) -> None:
    result = CliRunner().invoke(cli, ["results"], env={name: "3"})
    hint = f"; did you mean {closest}?" if closest else ""
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == f"Warning: {name} is not an mlpq setting and is ignored{hint}"
    assert result.stderr.count("Warning:") == 1


def test_settings_other_mlpq_variables_and_empty_ones_are_not_warned_about() -> None:
    env = {"MLPQ_LEASE_SECONDS": "30", "mlpq_max_attempts": "2", "MLPQ_LEASE_SECOND": "", **dict.fromkeys(
        OTHER_VARIABLES, "x")}
    result = CliRunner().invoke(cli, ["results"], env=env)
    assert result.exit_code == 0 and "Warning" not in result.output, result.output


def test_a_worker_warns_about_an_unknown_variable(tmp_path: Path) -> None:
    env = {**os.environ, "MLPQ_POOLS": "a100", "MLPQ_DATABASE_URL": f"sqlite:///{tmp_path / 'missing.db'}"}
    done = run_mlpq("worker", "--device", "cpu", env=env)
    assert done.returncode == 1 and done.stderr.splitlines() == [
        "Warning: MLPQ_POOLS is not an mlpq setting and is ignored; did you mean MLPQ_POOL?",
        f"Error: no ledger at '{tmp_path / 'missing.db'}': run 'mlpq db upgrade' to create it"]


def test_every_mlpq_variable_mlpq_reads_is_a_setting() -> None:
    settings = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    sources = "\n".join(path.read_text() for path in Path(mlpq.__file__).parent.rglob("*.py"))
    named = set(re.findall(r"\bMLPQ_[A-Z][A-Z0-9_]*", sources))
    assert named - settings - OTHER_VARIABLES == set()
    for name in sorted(cli_module.COMMANDS):
        command = cli.get_command(click.Context(cli), name)
        commands = [command, *getattr(command, "commands", {}).values()]
        assert [(c.name, p.name) for c in commands for p in c.params if getattr(p, "envvar", None)] == []


@pytest.mark.parametrize(("command", "env", "pool", "hostname"), [
    (["worker"], {"MLPQ_POOL": "a100", "MLPQ_HOSTNAME": "gpu-box-7"}, "a100", "gpu-box-7"),
    (["worker", "--pool", "h200", "--hostname", "other"], {"MLPQ_POOL": "a100", "MLPQ_HOSTNAME": "gpu-box-7"},
     "h200", "other"),
    (["worker"], {"MLPQ_POOL": "", "MLPQ_HOSTNAME": ""}, None, None),
])
def test_a_worker_takes_its_pool_and_host_name_from_the_settings_unless_given(
        monkeypatch: pytest.MonkeyPatch, command: list[str], env: dict[str, str], pool: str | None,
        hostname: str | None) -> None:
    from mlpq.worker import launch  # imports Celery

    started = []
    monkeypatch.setattr(launch, "start_worker", lambda settings, device, **kw: started.append((device, kw)) or 0)
    result = CliRunner().invoke(cli, command, env=env)
    assert result.exit_code == 0, result.output
    [(device, options)] = started
    assert (device.pool, options["hostname"]) == (pool, hostname or socket.gethostname())


@pytest.mark.parametrize(("value", "debug"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_mlpq_debug_shows_the_traceback_of_an_unexpected_error(monkeypatch: pytest.MonkeyPatch, value: str,
                                                               debug: bool) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Client, "list", broken)
    result = CliRunner().invoke(cli, ["results"], env={"MLPQ_DEBUG": value})
    if debug:
        assert isinstance(result.exception, RuntimeError)
    else:
        assert result.exit_code == 1 and result.output.startswith("Error: RuntimeError: boom")
        assert len(result.output.splitlines()) == 1


def test_artifact_limits_follow_where_artifacts_live() -> None:
    assert Settings.from_env({}).artifact_limit == 64 << 20
    assert Settings.from_env({"MLPQ_ARTIFACT_DIR": "/srv/artifacts"}).artifact_limit == 16 << 30
    assert Settings.from_env({"MLPQ_ARTIFACT_MAX_BYTES": "1000"}).artifact_limit == 1000
    roomy = {"MLPQ_ARTIFACT_DIR": "/srv/artifacts", "MLPQ_ARTIFACT_MAX_BYTES": str(1 << 30)}
    assert Settings.from_env(roomy).artifact_limit == 1 << 30
    with pytest.raises(SettingsError, match=r"^MLPQ_ARTIFACT_MAX_BYTES must be at most 67108864 \(64 MiB\) without "
                                            r"MLPQ_ARTIFACT_DIR, got 67108865$"):
        Settings.from_env({"MLPQ_ARTIFACT_MAX_BYTES": str((64 << 20) + 1)})
    with pytest.raises(SettingsError, match="^MLPQ_ARTIFACT_DIR: 'artifacts' is not an absolute path"):
        Settings.from_env({"MLPQ_ARTIFACT_DIR": "artifacts"})

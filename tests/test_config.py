"""MLPQ_* settings: parsed and checked once at start by pydantic-settings; a bad one is exit 2 naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from mlpq.api_cli.cli import cli
from mlpq.config import Settings, SettingsError
from tests.faults.conftest import FAST_LEASES

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
    ("MLPQ_DATABASE_URL", "postgresql://u@h:abc/db", "malformed database URL"),
    ("MLPQ_DATABASE_URL", "sqlite://", "in-memory SQLite database, which cannot hold a ledger"),
    ("MLPQ_DATABASE_URL", "sqlite:///:memory:", "in-memory SQLite database, which cannot hold a ledger"),
    ("MLPQ_DATABASE_URL", "postgresql+asyncpg://u@h/db", "unsupported database driver 'postgresql+asyncpg'"),
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

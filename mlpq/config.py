"""Typed settings read from ``MLPQ_*`` environment variables by pydantic-settings, checked once at start.

This module imports pydantic-settings: modules on the path of ``mlpq --help``
import it only under ``TYPE_CHECKING`` or inside a function.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from mlpq.locations import (DEFAULT_BROKER_URL, check_broker_url, check_data_dir, check_hostname, default_data_dir,
                            default_database_url, normalise_database_url)
from mlpq.redact import shown
from mlpq.devices import parse_pool

ENV_PREFIX = "MLPQ_"
OTHER_VARIABLES = frozenset({"MLPQ_IMAGE", "MLPQ_BIND_ADDRESS", "MLPQ_CERTS_DIR", "MLPQ_TEST_PROCESSES",
                             "MLPQ_TEST_POSTGRES_URL", "MLPQ_BENCH_REDIS_DB", "MLPQ_JOB_ID", "MLPQ_CHECKPOINT_DIR",
                             "MLPQ_REPORT_FD"})
"""``MLPQ_*`` names that are not settings but belong to mlpq's compose files, test scripts and benchmarks, and
those a worker sets for a command job's program (``mlpq.models.command``)."""
LEDGER_ARTIFACT_MAX_BYTES = 64 << 20
"""The largest artifact the ledger itself keeps (a chunk row per MiB)."""
DIRECTORY_ARTIFACT_MAX_BYTES = 16 << 30
"""The default limit with ``MLPQ_ARTIFACT_DIR``."""
HEARTBEATS_PER_LEASE = 3
"""A lease outlives at least this many heartbeats, so one late heartbeat never loses it."""


class SettingsError(ValueError):
    """A setting breaks a rule; the message names the variable (or option) and the rule."""


@dataclass(frozen=True)
class Leases:
    """How running jobs prove they are alive, and how often workers look for those that are not."""

    lease_s: float = 60.0
    """A running job whose heartbeat is older than this is presumed lost."""
    heartbeat_s: float = 5.0
    maintenance_s: float = 10.0
    """How often each worker reaps expired leases and re-publishes jobs missing from the broker."""
    max_attempts: int = 3
    db_retry_s: float = 120.0
    """How long a running job retries a ledger write while the database is unreachable. It may exceed the
    lease: the reaper waits until the database has answered for a full lease, so a run that outlives an
    outage renews its heartbeat in time and keeps its claim."""
    hard_limit_grace_s: float = 30.0
    """After its soft time limit a job has this long to record its failure before its process is killed."""


class Settings(BaseSettings):
    """Where the broker, the job ledger and the datasets live, and the lease timings.

    Each field is the variable ``MLPQ_<FIELD>``; an empty variable counts as unset.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True,
                                      allow_inf_nan=False, extra="forbid")

    broker_url: str = DEFAULT_BROKER_URL
    database_url: str = Field(default_factory=default_database_url)
    data_dir: Path = Field(default_factory=default_data_dir)
    lease_seconds: float = Field(Leases.lease_s, ge=1, le=86_400)
    heartbeat_seconds: float = Field(Leases.heartbeat_s, ge=0.05)
    maintenance_seconds: float = Field(Leases.maintenance_s, ge=0.1)
    db_retry_seconds: float = Field(Leases.db_retry_s, ge=0, le=86_400)
    hard_limit_grace_seconds: float = Field(Leases.hard_limit_grace_s, ge=1, le=3_600)
    max_attempts: int = Field(Leases.max_attempts, ge=1, le=100)
    gpu_index: int | None = Field(None, ge=0, le=99)
    """The GPU's index as the worker's host sees it (``mlpq worker --gpu-index``)."""
    ui_token: str | None = Field(None, repr=False)
    """``MLPQ_UI_TOKEN``: the secret ``mlpq ui`` asks for before it shows anything or acts."""
    hostname: str | None = None
    """The host name a worker reports (``mlpq worker --hostname``); unset: the system's."""
    pool: str | None = None
    """The pool a worker serves (``mlpq worker --pool``); unset: jobs submitted without one."""
    allow_commands: bool = False
    """``MLPQ_ALLOW_COMMANDS=1`` (``mlpq worker --allow-commands``): the worker also runs command jobs, any
    program anyone who can write to the ledger and the broker submits, as the worker's user."""
    command_grace_seconds: float = Field(10.0, ge=0, le=3_600)
    """How long a cancelled or timed-out command job's programs have after SIGTERM before SIGKILL (the runner,
    ``mlpq.models.command``, reads the variable itself)."""
    artifact_dir: Path | None = None
    """``MLPQ_ARTIFACT_DIR``: a directory every host mounts, where artifacts' bytes go (unset: in the ledger)."""
    artifact_max_bytes: int | None = Field(None, ge=1)
    """``MLPQ_ARTIFACT_MAX_BYTES``: the largest artifact kept (unset: 64 MiB in the ledger, 16 GiB in a
    directory); see ``artifact_limit``."""
    debug: bool = False
    """``MLPQ_DEBUG=1``: an unexpected error shows its traceback instead of one line."""

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        return check_broker_url(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        normalise_database_url(value)
        return value

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        return check_hostname(value) if value is not None else None

    @field_validator("pool")
    @classmethod
    def _pool(cls, value: str | None) -> str | None:
        return parse_pool(value) if value is not None else None

    @field_validator("data_dir", "artifact_dir", mode="before")
    @classmethod
    def _data_dir(cls, value: object) -> object:
        return check_data_dir(str(value)) if isinstance(value, (str, Path)) else value

    @model_validator(mode="after")
    def _relations(self) -> Settings:
        lease = self.lease_seconds
        rules = [
            (self.heartbeat_seconds <= lease / HEARTBEATS_PER_LEASE, "HEARTBEAT_SECONDS",
             f"at most a third of MLPQ_LEASE_SECONDS ({lease:g})"),
            (self.maintenance_seconds <= lease, "MAINTENANCE_SECONDS", f"at most MLPQ_LEASE_SECONDS ({lease:g})"),
        ]
        for holds, name, rule in rules:
            if not holds:
                value = getattr(self, name.lower())
                raise ValueError(f"{ENV_PREFIX}{name} must be {rule}, got {value:g}")
        if self.artifact_dir is None and (self.artifact_max_bytes or 0) > LEDGER_ARTIFACT_MAX_BYTES:
            raise ValueError(f"{ENV_PREFIX}ARTIFACT_MAX_BYTES must be at most {LEDGER_ARTIFACT_MAX_BYTES} (64 MiB) "
                             f"without MLPQ_ARTIFACT_DIR, got {self.artifact_max_bytes}")
        return self

    @property
    def artifact_limit(self) -> int:
        """The largest artifact a job may keep, in bytes."""
        if self.artifact_max_bytes is not None:
            return self.artifact_max_bytes
        return LEDGER_ARTIFACT_MAX_BYTES if self.artifact_dir is None else DIRECTORY_ARTIFACT_MAX_BYTES

    @property
    def leases(self) -> Leases:
        return Leases(self.lease_seconds, self.heartbeat_seconds, self.maintenance_seconds, self.max_attempts,
                      self.db_retry_seconds, self.hard_limit_grace_seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> Settings:
        """Settings from the ``MLPQ_*`` variables in ``environ``, with every non-empty override on top.

        Raises ``SettingsError`` naming the variable (or, for an override, the
        field) and the rule it breaks.
        """
        values: dict[str, Any] = _EnvironSource(cls, environ)()
        given = {name: value for name, value in overrides.items() if value not in (None, "")}
        try:
            return cls.model_validate({**values, **given})
        except ValidationError as exc:
            raise SettingsError(describe(exc, given)) from None


def unknown_variables(environ: Mapping[str, str] = os.environ) -> list[str]:
    """A warning for each non-empty ``MLPQ_*`` variable that is not a setting, naming the closest one.

    Such a variable is ignored, so a misspelt setting would otherwise go unnoticed.
    Names are compared as pydantic-settings reads them, ignoring case.
    """
    fields = sorted(field.upper() for field in Settings.model_fields)
    warnings = []
    for name in sorted(environ):
        upper = name.upper()
        field = upper.removeprefix(ENV_PREFIX)
        if field == upper or not environ[name] or field in fields or upper in OTHER_VARIABLES:
            continue
        closest = difflib.get_close_matches(field, fields, n=1)  # the common prefix would make any name close
        hint = f"; did you mean {ENV_PREFIX}{closest[0]}?" if closest else ""
        warnings.append(f"Warning: {name} is not an mlpq setting and is ignored{hint}")
    return warnings


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def describe(exc: ValidationError, overrides: Mapping[str, Any]) -> str:
    """The first error as one line: the variable (or overridden field), the rule, the value given (cut)."""
    error = exc.errors()[0]
    field = next((str(part) for part in error["loc"] if isinstance(part, str)), "")
    message = error["msg"].removeprefix("Value error, ")
    if not field:
        return message
    name = field if field in overrides else f"{ENV_PREFIX}{field.upper()}"
    if error["type"] == "value_error":  # our own checks quote the value themselves
        return f"{name}: {message}"
    return f"{name}: {message[0].lower()}{message[1:]} (got {shown(error.get('input'))})"

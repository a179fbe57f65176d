"""Typed settings read from ``MLPQ_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

DEFAULT_BROKER_URL = "redis://localhost:6379/0"


def default_database_url() -> str:
    """An SQLite file in the user's data directory."""
    return f"sqlite:///{Path(platformdirs.user_data_dir('mlpq')) / 'mlpq.db'}"


def default_data_dir() -> Path:
    """Where datasets are downloaded and cached: the user's cache directory."""
    return Path(platformdirs.user_cache_dir("mlpq")) / "data"


@dataclass(frozen=True)
class Leases:
    """How running jobs prove they are alive, and how often workers look for those that are not."""

    lease_s: float = 60.0
    """A running job whose heartbeat is older than this is presumed lost."""
    heartbeat_s: float = 5.0
    maintenance_s: float = 10.0
    """How often each worker reaps expired leases and re-publishes jobs missing from the broker."""
    max_attempts: int = 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Leases:
        defaults = cls()
        return cls(
            lease_s=float(environ.get("MLPQ_LEASE_SECONDS") or defaults.lease_s),
            heartbeat_s=float(environ.get("MLPQ_HEARTBEAT_SECONDS") or defaults.heartbeat_s),
            maintenance_s=float(environ.get("MLPQ_MAINTENANCE_SECONDS") or defaults.maintenance_s),
            max_attempts=int(environ.get("MLPQ_MAX_ATTEMPTS") or defaults.max_attempts),
        )


@dataclass(frozen=True)
class Settings:
    """Where the broker, the job ledger and the datasets live, and the lease timings."""

    broker_url: str = DEFAULT_BROKER_URL
    database_url: str = ""
    data_dir: Path = Path()
    leases: Leases = field(default_factory=Leases)
    ui_token: str | None = field(default=None, repr=False)
    """``MLPQ_UI_TOKEN``: the secret ``mlpq ui`` asks for before it shows anything or acts."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Settings from ``MLPQ_BROKER_URL``, ``MLPQ_DATABASE_URL``, ``MLPQ_DATA_DIR`` and the lease variables."""
        return cls(
            broker_url=environ.get("MLPQ_BROKER_URL") or DEFAULT_BROKER_URL,
            database_url=environ.get("MLPQ_DATABASE_URL") or default_database_url(),
            data_dir=Path(environ.get("MLPQ_DATA_DIR") or default_data_dir()),
            leases=Leases.from_env(environ),
            ui_token=environ.get("MLPQ_UI_TOKEN") or None,
        )

    def with_overrides(self, **values: object) -> Settings:
        """A copy with every non-empty value replaced."""
        return replace(self, **{k: v for k, v in values.items() if v})

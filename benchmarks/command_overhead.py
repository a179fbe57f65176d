"""Command job overhead: ``python -c pass`` run directly against the same program as a command job through a warm
worker, end to end, side by side.

Direct: ``subprocess.run`` of the program, wall time. Through mlpq: ``Client.submit`` of the command job until
``Client.wait`` sees it ended (the ledger row, the message, claim, the supervising parent, the program, its
log and outcome, the end signal), and the ledger's own created → finished. Both on this machine, one worker
process (``--allow-commands``), a first job run to warm it up. The target: at most 0.3 s more than direct.

    .venv/bin/python benchmarks/command_overhead.py [--runs 20] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext

import _common

PROGRAM = [sys.executable, "-c", "pass"]
TARGET_S = 0.3


def direct(runs: int) -> list[float]:
    _common.run_command(PROGRAM)  # warm the page cache
    return [_common.run_command(PROGRAM) for _ in range(runs)]


def through_worker(broker_url: str, runs: int, database_url: str | None) -> tuple[list[float], list[float]]:
    """Seconds from submit to the client seeing the end, and the ledger's created → finished, per job."""
    from mlpq.api_cli.api import JobRequest
    from mlpq.db.status import JobStatus

    with _common.mlpq_worker(broker_url, "--device", "cpu", "--allow-commands", database_url=database_url) as (env, _):
        client = _common.client_for(env)
        request = JobRequest("command", {"argv": PROGRAM})
        client.wait(client.submit_many([request])[0].id, poll_interval=0.05)  # warm-up
        seen, ledger = [], []
        for _ in range(runs):
            began = time.perf_counter()
            [job] = client.submit_many([request])
            ended = client.wait(job.id, poll_interval=0.05)
            seen.append(time.perf_counter() - began)
            if ended.status is not JobStatus.SUCCEEDED:
                raise RuntimeError(f"job {job.id} {ended.status.value}: {ended.error}")
            assert ended.created_at is not None and ended.finished_at is not None
            ledger.append((ended.finished_at - ended.created_at).total_seconds())
        return seen, ledger


def row(name: str, seconds: list[float], baseline: float | None) -> dict[str, object]:
    p50 = statistics.median(seconds)
    return {"run": name, "p50 s": p50, "p95 s": _common.percentile(seconds, 95), "min s": min(seconds),
            "overhead p50 s": None if baseline is None else p50 - baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    from tests.services import fresh_postgres_database

    ledger = fresh_postgres_database() if args.database == "postgresql" else nullcontext()
    with _common.redis_database() as broker_url, ledger as database_url:
        alone = direct(args.runs)
        seen, recorded = through_worker(broker_url, args.runs, database_url)
    baseline = statistics.median(alone)
    rows = [row("python -c pass, directly", alone, None),
            row(f"as a command job, submit → client sees the end ({args.database})", seen, baseline),
            row(f"as a command job, ledger created → finished ({args.database})", recorded, baseline)]
    print(f"Command job overhead: {args.runs} runs of `python -c pass` each way (target ≤ {TARGET_S} s more)")
    print(_common.machine())
    print()
    print(_common.table(rows, ["run", "p50 s", "p95 s", "min s", "overhead p50 s"]))
    overhead = statistics.median(seen) - baseline
    print(f"\nend-to-end overhead (p50): {overhead:.3f} s: {'within' if overhead <= TARGET_S else 'over'} the target")


if __name__ == "__main__":
    main()

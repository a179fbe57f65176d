"""Himmelblau speed: the tutorial's torch.optim loop against mlpq's fast engines, in-process and end to end.

In-process: Adam (lr 1e-3, 20,000 steps) from (0,0) the tutorial's way, then
mlpq's job code for one start (scalar engine) and for 32×32 and 64×64 grids
(tensor engine), each checked against the plain torch.optim run of the same starts.
End to end: ``python benchmarks/tutorial_himmelblau.py`` against
``mlpq submit himmelblau --wait`` through a real worker (Redis database 12 by
default, see MLPQ_BENCH_REDIS_DB; an SQLite ledger in a temporary directory).

    .venv/bin/python benchmarks/himmelblau_speed.py [--runs 3] [--no-end-to-end]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import _common
import torch
import tutorial_himmelblau

from mlpq.kinds.himmelblau import HimmelblauSpec
from mlpq.models import himmelblau
from mlpq.models.context import RunContext
from mlpq.models.himmelblau_fast import one_cpu_thread

CTX = RunContext("cpu", lambda *_: None, Path("."))


def in_process() -> None:
    tutorial_s, tutorial_end = _common.timed(tutorial_himmelblau.minimise)
    rows = [{"run": "tutorial loop: torch.optim.Adam on a 2-element tensor", "starts": 1, "seconds": tutorial_s,
             "speed-up": 1.0, "end point": f"({tutorial_end[0]:.6f}, {tutorial_end[1]:.6f})",
             "max |Δ|": "0 (itself)"}]
    for label, spec in [("mlpq, one start (scalar engine)", HimmelblauSpec()),
                        ("mlpq, grid 32 (tensor engine)", HimmelblauSpec(grid=32)),
                        ("mlpq, grid 64 (tensor engine)", HimmelblauSpec(grid=64))]:
        seconds, result = _common.timed(lambda: himmelblau.run(spec, CTX))
        with one_cpu_thread():
            reference = himmelblau.minimise_torch(spec.start_points(), spec.optimizer, spec.lr, spec.momentum,
                                                  spec.steps, spec.log_every, himmelblau.ignore)
        fast = torch.tensor([[s["x"], s["y"]] for s in result["starts"]])
        deltas = [(fast - reference).abs().max().item()]
        if len(fast) == 1:
            deltas.append((fast[0] - torch.tensor(tutorial_end)).abs().max().item())
        rows.append({"run": label, "starts": len(result["starts"]), "seconds": seconds,
                     "speed-up": tutorial_s / seconds,
                     "end point": f"({result['x']:.6f}, {result['y']:.6f}); {result['minima_found']}/4 minima",
                     "max |Δ|": f"{max(deltas):.1e}"})
    print("In-process, Adam lr 1e-3, 20,000 steps (speed-up: the tutorial loop's seconds over the row's; "
          "max |Δ|: largest coordinate difference from torch.optim on the same starts)")
    print(_common.table(rows, ["run", "starts", "seconds", "speed-up", "end point", "max |Δ|"]))


def end_to_end(runs: int) -> None:
    script = [sys.executable, str(Path(__file__).with_name("tutorial_himmelblau.py"))]
    tutorial = [_common.run_command(script) for _ in range(runs)]
    with _common.redis_database() as broker_url, _common.mlpq_worker(broker_url) as (env, _):
        submit = [sys.executable, "-m", "mlpq.api_cli", "submit", "himmelblau", "--wait"]
        _common.run_command(submit, env)  # the worker's first job imports the job code
        waits = [_common.run_command(submit, env) for _ in range(runs)]
        jobs = _common.client_for(env).list(kind="himmelblau", limit=runs)
        job_s = [job.duration_seconds for job in jobs]
    rows = [
        {"command": "python benchmarks/tutorial_himmelblau.py", "median s": statistics.median(tutorial),
         "min s": min(tutorial), "speed-up": 1.0},
        {"command": "mlpq submit himmelblau --wait", "median s": statistics.median(waits), "min s": min(waits),
         "speed-up": statistics.median(tutorial) / statistics.median(waits)},
        {"command": "  of which the job itself (ledger started → finished)", "median s": statistics.median(job_s),
         "min s": min(job_s), "speed-up": None},
    ]
    print(f"End to end, wall time of the command, {runs} runs each (mlpq: a warm CPU worker, SQLite ledger)")
    print(_common.table(rows, ["command", "median s", "min s", "speed-up"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-end-to-end", action="store_true", help="Skip what needs Redis and a worker.")
    args = parser.parse_args()
    print(_common.machine())
    print()
    in_process()
    if not args.no_end_to_end:
        print()
        end_to_end(args.runs)


if __name__ == "__main__":
    main()

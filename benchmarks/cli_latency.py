"""CLI latency: wall time of five everyday commands against ``python -c pass`` (best and median of N runs).

``mlpq --help``; ``mlpq results`` on an SQLite ledger holding the jobs this
script submitted; ``mlpq submit himmelblau --steps 10`` (no wait); and the same
with ``--wait``, end to end with a warm ``mlpq worker --device cpu``, which
``mlpq workers`` lists. The
ledger is a fresh SQLite file in a temporary directory and the broker a Redis
database of the benchmark's own (``MLPQ_BENCH_REDIS_DB``, default 12).
``python -c "import torch"`` is shown for scale: the CLI never pays for it.

    .venv/bin/python benchmarks/cli_latency.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import _common

TARGETS_MS = {"mlpq --help": 200, "mlpq results": 350, "mlpq submit himmelblau --steps 10": 450,
              "mlpq submit himmelblau --steps 10 --wait": 700, "mlpq workers": 400}
"""Issue 12's targets (issue 17's for ``mlpq workers``), best of 5 on a quiet 2-CPU machine."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("mlpq")
    mlpq = [str(script)] if script.exists() else [sys.executable, "-m", "mlpq.api_cli"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        "mlpq --help": [*mlpq, "--help"],
        "mlpq results": [*mlpq, "results"],
        "mlpq submit himmelblau --steps 10": [*mlpq, "submit", "himmelblau", "--steps", "10"],
        "mlpq submit himmelblau --steps 10 --wait": [*mlpq, "submit", "himmelblau", "--steps", "10", "--wait"],
        "mlpq workers": [*mlpq, "workers"],
    }
    with _common.redis_database() as broker_url, _common.mlpq_worker(broker_url) as (env, _worker):
        _common.run_command(commands["mlpq submit himmelblau --steps 10 --wait"], env)  # warms the worker's pool
        times = {name: [_common.run_command(command, env) * 1000 for _ in range(args.runs)]
                 for name, command in commands.items()}
    base = min(times["python -c pass"])
    print(f"CLI latency, best and median of {args.runs} runs ({' '.join(mlpq)})")
    print(_common.machine())
    print()
    print(_common.table([
        {"command": name, "best ms": min(values), "median ms": statistics.median(values),
         "best over python -c pass, ms": min(values) - base, "target ms": TARGETS_MS.get(name)}
        for name, values in times.items()
    ], ["command", "best ms", "median ms", "best over python -c pass, ms", "target ms"]))


if __name__ == "__main__":
    main()

"""CLI latency: wall time of ``mlpq --help`` and ``mlpq results`` against ``python -c pass`` (median of N runs).

``mlpq results`` reads an empty SQLite ledger in a temporary directory (one
untimed run first creates it). ``python -c "import torch"`` is shown for scale:
the CLI should never pay for it.

    .venv/bin/python benchmarks/cli_latency.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import _common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("mlpq")
    mlpq = [str(script)] if script.exists() else [sys.executable, "-m", "mlpq.api_cli"]
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "MLPQ_DATABASE_URL": f"sqlite:///{scratch}/ledger.db",
               "MLPQ_BROKER_URL": "redis://127.0.0.1:1/0", "MLPQ_DATA_DIR": f"{scratch}/data"}
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
            "mlpq --help": [*mlpq, "--help"],
            "mlpq results": [*mlpq, "results"],
        }
        _common.run_command(commands["mlpq results"], env)  # creates and migrates the ledger
        times = {name: [_common.run_command(command, env) * 1000 for _ in range(args.runs)]
                 for name, command in commands.items()}
    base = statistics.median(times["python -c pass"])
    print(f"CLI latency, median of {args.runs} runs ({' '.join(mlpq)})")
    print(_common.machine())
    print()
    print(_common.table([
        {"command": name, "median ms": statistics.median(values), "min ms": min(values),
         "over python -c pass, ms": statistics.median(values) - base}
        for name, values in times.items()
    ], ["command", "median ms", "min ms", "over python -c pass, ms"]))


if __name__ == "__main__":
    main()

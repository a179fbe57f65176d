"""Tuning: TPE with ASHA pruning against random search without pruning, side by side on the full MNIST.

Both studies search lr 1e-3..0.5 (log), momentum 0..0.95 and batch size 50, 100 or 200 for 10 epochs, 24
trials each, 2 at a time on 2 ``mlpq worker --device cpu`` processes sharing one fresh SQLite ledger, with the
same seed; one after the other in one run. Each row: the epochs its jobs trained (every stored epoch of every
trial, pruned ones included), its wall time and its best test accuracy. The workers beat every second
(``MLPQ_HEARTBEAT_SECONDS=1``), so a pruned trial stops within a second of the decision. Issue 21's target:
at least 2× fewer epochs for a best accuracy within 0.3 points of the unpruned search.

    .venv/bin/python benchmarks/tune.py [--data-dir DIR] [--trials 24] [--epochs 10] [--seed 21]

MNIST must be in DIR (``mlpq data fetch``; docs/data.md); the default is MLPQ_DATA_DIR's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import _common

SEARCH = ("--search", "lr=1e-3..0.5:log", "--search", "momentum=0..0.95", "--search", "batch-size=50,100,200")
STUDIES = {"TPE + ASHA": ("--sampler", "tpe", "--pruner", "asha"),
           "random, no pruning": ("--sampler", "random", "--pruner", "none")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    from mlpq.config import Settings
    from tests.services import mlpq_command, start_worker

    data_dir = (args.data_dir or Settings.from_env(os.environ).data_dir).resolve()
    os.environ["MLPQ_HEARTBEAT_SECONDS"] = "1"
    rows = []
    with _common.redis_database() as broker_url, _common.mlpq_worker(broker_url) as (env, worker):
        second = start_worker(env, worker.log_path.with_name("worker-2.log"), "--device", "cpu")
        try:
            for name, options in STUDIES.items():
                command = mlpq_command("tune", "mnist", *SEARCH, "--epochs", str(args.epochs), "--dataset", "mnist",
                                       "--data-dir", str(data_dir), "--trials", str(args.trials), "--parallel", "2",
                                       "--seed", str(args.seed), *options, "--wait", "--json")
                began = time.perf_counter()
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
                wall = time.perf_counter() - began
                if done.returncode != 0:
                    raise SystemExit(f"{name}: mlpq tune exited {done.returncode}:\n{done.stderr}")
                study = json.loads(done.stdout)
                states = [trial["state"] for trial in study["trials"]]
                best = study["best"]
                rows.append({"study": name, "trials": len(states), "pruned": states.count("pruned"),
                             "epochs trained": study["steps_trained"], "wall s": wall,
                             "best test accuracy %": best["value"] * 100 if best else None,
                             "best params": " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                     for k, v in (best or {}).get("params", {}).items())})
        finally:
            second.stop()
    pruned, plain = rows
    print(f"Tuning on the full MNIST: {args.trials} trials of {args.epochs} epochs, 2 CPU workers, seed {args.seed}")
    print(_common.machine())
    print()
    print(_common.table(rows, ["study", "trials", "pruned", "epochs trained", "wall s", "best test accuracy %",
                               "best params"]))
    print()
    ratio = plain["epochs trained"] / pruned["epochs trained"]
    gap = (plain["best test accuracy %"] or 0) - (pruned["best test accuracy %"] or 0)
    print(f"epochs: {ratio:.2f}x fewer with TPE + ASHA (target >= 2x); best accuracy {gap:+.2f} points behind the "
          f"unpruned search (target <= 0.3)")


if __name__ == "__main__":
    main()

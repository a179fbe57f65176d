"""What checkpointing costs an MNIST job: the tutorial's settings (10 epochs, batch 200, SGD 0.01), with and
without a checkpoint after every epoch, side by side in one run.

"With" is the job as a worker runs it: after each epoch but the last the runner builds its checkpoint
(``torch.save`` into memory: weights, momentum, generator, metrics) and hands it to the worker's
``Checkpoints.save``, which writes the epoch's metrics and stores the checkpoint in a real SQLite ledger
(1 MiB chunk rows, replacing the one before). "Without" is the same run with both steps taken out. The two
are interleaved, repeat by repeat, so a busy machine slows both alike. The table gives each one's median job
time (the whole run but the data loading: training, evaluation, building and storing checkpoints) and the
overhead two ways: the difference of the medians (noisy on a busy machine), and the seconds the checkpoints
themselves took (built and stored, timed in the run) over the rest of that run.

    .venv/bin/python benchmarks/checkpoint.py [--dataset mnist|mnist-sample] [--repeats 3] [--threads N]
        [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import torch

from mlpq.config import Settings
from mlpq.db import jobs
from mlpq.db.engine import make_engine
from mlpq.db.migrate import upgrade_schema
from mlpq.kinds.mnist import MnistSpec
from mlpq.models import mnist, mnist_data, mnist_files, mnist_state, resident
from mlpq.models.context import FileSource, RunContext
from mlpq.worker.checkpoints import Checkpoints
from mlpq.worker.job_files import ArtifactSettings, JobFiles


class Ledger:
    """A job in a fresh SQLite ledger, and its attempt's checkpoint keeper, as a worker would hold them."""

    def __init__(self, folder: Path, spec: MnistSpec) -> None:
        self.engine = make_engine(f"sqlite:///{folder / 'ledger.db'}")
        upgrade_schema(self.engine)
        with self.engine.begin() as connection:
            job_id = jobs.create_job(connection, "mnist", spec.model_dump(mode="json"), "cpu", timeout_s=3600).id
            jobs.claim_job(connection, job_id, "bench")
        files = JobFiles(self.engine, ArtifactSettings(), job_id, 1, lambda: None, 10.0)
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.job_id, self.seconds, self.count = job_id, 0.0, 0
        self.keeper = Checkpoints(files, spec, self.flush, lambda write: write(), folder)

    def progress(self, step: int, values: Any) -> None:
        self.pending.append((step, dict(values)))

    def flush(self) -> int | None:
        with self.engine.begin() as connection:
            jobs.add_metrics(connection, self.job_id, 1, self.pending)
        last = self.pending[-1][0] if self.pending else None
        self.pending = []
        return last

    def checkpoint(self, source: FileSource) -> None:
        began = time.perf_counter()
        self.keeper.save(source)
        self.seconds += time.perf_counter() - began
        self.count += 1


def run(spec: MnistSpec, root: Path, checkpointing: bool) -> dict[str, Any]:
    """One job: its seconds but the data loading, and (with checkpoints) what storing them took."""
    with tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(Path(folder), spec)
        ctx = RunContext("cpu", ledger.progress, root, checkpoint=ledger.checkpoint)
        build = mnist_state.checkpoint

        def timed_build(*args: Any) -> bytes:
            began = time.perf_counter()
            data = build(*args)
            ledger.seconds += time.perf_counter() - began
            return data

        mnist_state.checkpoint = timed_build  # type: ignore[assignment]
        if not checkpointing:
            mnist_state.checkpoint = lambda *args: b""  # type: ignore[assignment]  # nothing built
            ctx = RunContext("cpu", ledger.progress, root)  # nothing kept
        try:
            took, result = _common.timed(lambda: mnist.run(spec, ctx))
        finally:
            mnist_state.checkpoint = build  # type: ignore[assignment]
        ledger.engine.dispose()
        seconds = took - result["load_seconds"]
        return {"seconds": seconds, "checkpointing": ledger.seconds, "count": ledger.count,
                "accuracy": result["test_accuracy"], "model": result["model_sha256"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("mnist", "mnist-sample"), default="mnist")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-dir", type=Path, default=Settings.from_env().data_dir)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.dataset == "mnist":
        mnist_files.ensure(args.data_dir)
    mnist_data.load(args.dataset, args.data_dir)  # decoded and cached once, outside the timings
    spec = MnistSpec(dataset=args.dataset, epochs=10, batch_size=200, lr=0.01, momentum=0.0, seed=0,
                     logits_relu=True)
    print(_common.machine())
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for repeat in range(args.repeats):
        for checkpointing in ((False, True) if repeat % 2 == 0 else (True, False)):
            resident.clear()
            runs[checkpointing].append(run(spec, args.data_dir, checkpointing))
    assert len({r["model"] for rs in runs.values() for r in rs}) == 1, "checkpointing changed the weights"
    base = statistics.median(r["seconds"] for r in runs[False])
    rows = []
    for checkpointing, label in ((False, "without checkpoints"), (True, "a checkpoint after every epoch")):
        median = statistics.median(r["seconds"] for r in runs[checkpointing])
        count = runs[checkpointing][0]["count"]
        share = statistics.median(r["checkpointing"] / (r["seconds"] - r["checkpointing"])
                                  for r in runs[checkpointing])
        rows.append({"run": label, "job s (median)": median,
                     "each run s": ", ".join(f"{r['seconds']:.2f}" for r in runs[checkpointing]),
                     "checkpoints": count,
                     "checkpointing s": statistics.median(r["checkpointing"] for r in runs[checkpointing]),
                     "overhead (medians)": f"{(median / base - 1) * 100:+.1f}%" if checkpointing else "-",
                     "overhead (timed)": f"{share * 100:+.2f}%" if checkpointing else "-",
                     "test accuracy": runs[checkpointing][0]["accuracy"]})
    print(f"{args.dataset}, 10 epochs, batch 200, SGD lr 0.01, {args.repeats} repeats interleaved; the same "
          f"model.pt with and without")
    print(_common.table(rows, list(rows[0])))


if __name__ == "__main__":
    main()

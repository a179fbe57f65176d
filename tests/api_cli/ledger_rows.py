"""Jobs written straight into the test's ledger (``MLPQ_DATABASE_URL``), as a worker would have left them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from click.testing import CliRunner, Result

from mlpq.api_cli.cli import cli
from mlpq.db import jobs
from mlpq.db.status import JobStatus
from mlpq.db.engine import make_engine


def mlpq(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def add_job(kind: str, params: Mapping[str, Any], *, status: JobStatus = JobStatus.SUCCEEDED,
            result: Mapping[str, Any] | None = None, metrics: Sequence[tuple[int, Mapping[str, Any]]] = (),
            provenance: Mapping[str, Any] | None = None, sweep_id: str | None = None, device: str = "cpu") -> str:
    """A job of ``kind`` that ran (unless ``status`` is queued) and recorded ``metrics`` and ``result``."""
    engine = make_engine(os.environ["MLPQ_DATABASE_URL"])
    with engine.begin() as connection:
        job = jobs.create_job(connection, kind, params, device, timeout_s=60, sweep_id=sweep_id)
        if status is not JobStatus.QUEUED:
            jobs.claim_job(connection, job.id, "test-host")
            jobs.add_metrics(connection, job.id, 1, metrics)
        if status.terminal:
            jobs.finish_job(connection, job.id, 1, status, result=result, provenance=provenance,
                            error=None if status is JobStatus.SUCCEEDED else "diverged: f is not finite")
    engine.dispose()
    return job.id


def himmelblau_job(*, lr: float = 0.01, with_points: bool = True, sweep_id: str | None = None) -> str:
    """Two starts that walk towards (3, 2) and (−2.81, 3.13), with or without their recorded points."""
    paths = [[(4.0, 0.0), (3.5, 1.0), (3.0, 2.0)], [(-4.0, 0.0), (-3.4, 2.0), (-2.805118, 3.131312)]]
    metrics = [(step * 100, {"f_best": 10.0 / (step + 1), **({"points": [[*path[step], 1.0] for path in paths]}
                                                               if with_points else {})})
               for step in range(2)]
    starts = [{"start": list(path[0]), "x": path[-1][0], "y": path[-1][1], "f": 0.0,
               "nearest_minimum": list(path[-1]), "distance": 0.0} for path in paths]
    result = {"x": 3.0, "y": 2.0, "f": 1e-9, "distance": 1e-6, "minima_found": 2, "starts": starts,
              "headline": "2/4 minima from 2 starts, best f=1e-09 at (3.0000, 2.0000)"}
    params = {"seed": 1, "starts": [[4.0, 0.0], [-4.0, 0.0]], "optimizer": "adam", "lr": lr, "momentum": 0.0,
              "steps": 200, "log_every": 100}
    return add_job("himmelblau", params, result=result, metrics=metrics, sweep_id=sweep_id)


def mnist_job(*, lr: float = 0.01, epochs: int = 3, sweep_id: str | None = None) -> str:
    metrics = [(epoch, {"train_loss": 1.0 / epoch, "test_loss": 1.2 / epoch, "test_accuracy": 0.8 + epoch / 100})
               for epoch in range(1, epochs + 1)]
    result = {**metrics[-1][1], "dataset": "mnist-sample", "headline": "test accuracy 83.00% (mnist-sample)"}
    params = {"seed": 7, "epochs": epochs, "batch_size": 200, "lr": lr, "momentum": 0.0, "variant": "module",
              "logits_relu": False, "dataset": "mnist-sample", "data_dir": None}
    return add_job("mnist", params, result=result, metrics=metrics, sweep_id=sweep_id)

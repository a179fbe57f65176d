"""Follow a job while the CLI waits: a rich progress bar when stderr is a terminal, plain lines otherwise.

Both are fed from the metrics the worker stores in the ledger, polled by ``Client.wait``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from mlpq.api_cli import output
from mlpq import kinds
from mlpq.api_cli.api import BrokerUnavailableError, Client
from mlpq.db.records import JobRecord, MetricRecord
from mlpq.db.status import JobStatus
from mlpq.devices import COMMAND_KIND
from mlpq.redact import printable

QUEUED_HINT_AFTER_S = 10.0


def total_steps(job: JobRecord) -> int | None:
    """How far the job goes in its kind's steps (Himmelblau's optimiser steps, MNIST's epochs)."""
    kind = kinds.find(job.kind)
    return kind.total_steps(job.params) if kind else None


def figures(kind_name: str, values: Mapping[str, Any]) -> str:
    """The figures the bar shows, as the kind says: ``f 0.0123``, or ``loss 0.3125 acc 91.20%``."""
    kind = kinds.find(kind_name)
    return kind.progress_text(values) if kind else ""


def clock(seconds: float | None) -> str:
    return "-:--:--" if seconds is None else str(timedelta(seconds=round(seconds)))


def remaining_seconds(elapsed: float, done: int, total: int | None, done_at: float) -> float | None:
    """Time left at the pace of the ``done`` steps, which had taken ``done_at`` seconds: it counts down between
    two steps (an epoch) instead of growing; unknown before the first step is done."""
    if not total or done <= 0 or done_at <= 0:
        return None
    return max(0.0, done_at * (total - done) / done - (elapsed - done_at))


class QueuedHint:
    """Says once, after ten seconds in the queue, whether any live worker serves the job's device and pool."""

    def __init__(self, api: Client | None = None) -> None:
        self.api, self.began, self.given = api, time.monotonic(), False

    def due(self, job: JobRecord) -> str | None:
        if job.status is JobStatus.QUEUED and not self.given and time.monotonic() - self.began > QUEUED_HINT_AFTER_S:
            self.given = True
            return printable(self.text(job))
        return None

    def text(self, job: JobRecord) -> str:
        where = output.placement(job)
        try:
            serving = self.api.serving(job) if self.api is not None else None
        except BrokerUnavailableError:
            serving = None
        if serving is None:
            return f"still queued: is a worker for {where} running? (mlpq workers)"
        if serving:
            return f"still queued: {len(serving)} live worker(s) serve {where}, all busy (mlpq workers)"
        if job.kind == COMMAND_KIND:
            pool = f" in pool {job.pool}" if job.pool else ""
            return f"still queued: no live worker runs commands{pool} on {job.device} (mlpq workers)"
        if job.pool:
            return f"still queued: no live worker serves pool {job.pool} on {job.device} (mlpq workers)"
        return f"still queued: no live worker serves {job.device} (mlpq workers)"


class Display(Protocol):
    def metric(self, metric: MetricRecord) -> None: ...

    def poll(self, job: JobRecord) -> None: ...

    def close(self) -> None: ...


class Lines:
    """One line on stderr per stored metric, like ``  step 2000/20000: f_best=0.0123``; a job that succeeded
    past its last recorded step ends with a line for its final step and its headline."""

    def __init__(self, job: JobRecord, api: Client | None = None) -> None:
        self.total, self.step_name, self.hint = total_steps(job), output.step_name(job.kind), QueuedHint(api)
        self.last_step: int | None = None

    def metric(self, metric: MetricRecord) -> None:
        values = ", ".join(f"{k}={output.format_value(v)}" for k, v in metric.values.items() if k != "points")
        self.line(metric.step, values)
        self.last_step = metric.step

    def line(self, step: int, text: str) -> None:
        of_total = f"/{self.total}" if self.total else ""
        click.echo(printable(f"  {self.step_name} {step}{of_total}: {text}"), err=True)

    def poll(self, job: JobRecord) -> None:
        hint = self.hint.due(job)
        if hint:
            click.echo(f"  {hint}", err=True)
        if job.status is JobStatus.SUCCEEDED and self.total and self.last_step != self.total:
            self.line(self.total, output.headline(job) or "done")
            self.last_step = self.total

    def close(self) -> None:
        pass


class Bar:
    """A rich progress bar that fits 80 columns: steps (or epochs) done of the total, f or loss and
    accuracy (or the job's status while it has none), elapsed time and time left."""

    def __init__(self, job: JobRecord, console: Console, api: Client | None = None) -> None:
        self.total, self.done, self.figures, self.hint = total_steps(job) or 1, 0, "", QueuedHint(api)
        self.kind = job.kind
        self.counted: tuple[int, float] = (0, 0.0)
        """The steps done at the last poll that saw more of them, and the job's seconds then."""
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=16),
            TextColumn("{task.fields[unit]} {task.completed:.0f}/{task.total:.0f}"),
            TextColumn("{task.fields[figures]}", markup=False), TextColumn("{task.fields[elapsed]}"),
            TextColumn("ETA {task.fields[eta]}"),
            console=console, auto_refresh=False,
        )
        self.task = self.progress.add_task(job.id[:8], total=self.total, unit=output.step_name(job.kind),
                                           figures=job.status.value, elapsed=clock(None), eta=clock(None))
        self.progress.start()

    def metric(self, metric: MetricRecord) -> None:
        self.done, self.figures = metric.step, printable(figures(self.kind, metric.values))

    def poll(self, job: JobRecord) -> None:
        hint = self.hint.due(job)
        if hint:
            self.progress.console.print(hint, markup=False)
        seconds = job.duration_seconds
        if self.done > self.counted[0]:
            self.counted = (self.done, seconds or 0.0)
        if job.status is JobStatus.SUCCEEDED:
            self.done, eta = self.total, 0.0
        else:
            eta = remaining_seconds(seconds or 0.0, self.done, self.total, self.counted[1])
        shown = self.figures if job.status in (JobStatus.RUNNING, JobStatus.SUCCEEDED) and self.figures \
            else job.status.value
        self.progress.update(self.task, completed=self.done, figures=shown, elapsed=clock(seconds), eta=clock(eta))
        self.progress.refresh()

    def close(self) -> None:
        self.progress.stop()


def stderr_console() -> Console:
    return Console(stderr=True)


def display_for(job: JobRecord, api: Client | None = None) -> Display:
    """A bar when stderr is a terminal, plain lines otherwise; ``api`` lets its hint ask which workers are live."""
    console = stderr_console()
    return Bar(job, console, api) if console.is_terminal else Lines(job, api)


def follow(api: Client, job: JobRecord, *, quiet: bool = False) -> JobRecord:
    """Wait for ``job`` to end, showing its progress on stderr unless ``quiet``; returns it as it ended.

    On Ctrl-C the display is closed and ``KeyboardInterrupt`` propagates: the job goes on.
    """
    if quiet:
        return api.wait(job.id)
    display = display_for(job, api)
    try:
        return api.wait(job.id, on_metric=display.metric, on_poll=display.poll)
    finally:
        display.close()

"""Live progress for ``submit --wait`` and ``watch``: plain lines without a terminal, a rich bar with one, Ctrl-C."""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from itertools import groupby
from pathlib import Path

import pytest
import redis
from rich.console import Console

from mlpq.api_cli import progress
from mlpq.api_cli.api import Client
from mlpq.config import Settings
from mlpq.db import jobs
from mlpq.db.records import JobRecord, MetricRecord
from mlpq.db.status import JobStatus
from mlpq.db.engine import make_engine
from mlpq.devices import Device
from mlpq.worker.execute import execute_job
from mlpq.worker.lease import LeaseKeeper
from tests.api_cli.ledger_rows import add_job, mlpq
from tests.services import queue_of

PARAMS = {"seed": 1, "starts": [[4.0, 0.0]], "optimizer": "adam", "lr": 0.01, "momentum": 0.0, "steps": 300,
          "log_every": 100}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


STEPS = (0, 100, 200)
WAIT_S = 30.0
"""How long the stand-in worker waits for the follower to show a change before it goes on regardless."""


@dataclass
class Shown:
    """What ``watch``'s display has shown so far: the job's status at its last poll and the steps given to it
    before that poll. The stand-in worker waits on it, so each change is shown before the next is made."""

    status: JobStatus | None = None
    steps: int = 0
    given: int = 0
    """The steps given to the display so far (shown at its next poll)."""
    missed: list[str] = field(default_factory=list)
    """The changes the display did not show within ``WAIT_S`` seconds."""
    changed: threading.Condition = field(default_factory=threading.Condition)

    def metric(self) -> None:
        with self.changed:
            self.given += 1

    def polled(self, status: JobStatus) -> None:
        with self.changed:
            self.status, self.steps = status, self.given
            self.changed.notify_all()

    def expect(self, status: JobStatus, steps: int) -> None:
        """Wait until a poll has shown the job ``status`` with ``steps`` steps; note it if none does in time."""
        with self.changed:
            if not self.changed.wait_for(lambda: (self.status, self.steps) == (status, steps), WAIT_S):
                self.missed.append(f"{status.value} with {steps} step(s) (last shown: {self.status} {self.steps})")


class Observed:
    """The display ``watch`` made, telling ``shown`` what it has shown."""

    def __init__(self, display: progress.Display, shown: Shown) -> None:
        self.display, self.shown = display, shown

    def metric(self, metric: MetricRecord) -> None:
        self.display.metric(metric)
        self.shown.metric()

    def poll(self, job: JobRecord) -> None:
        self.display.poll(job)
        self.shown.polled(job.status)

    def close(self) -> None:
        self.display.close()


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> Shown:
    """What the display of the job being followed has shown."""
    seen, make = Shown(), progress.display_for
    monkeypatch.setattr(progress, "display_for", lambda job, api=None: Observed(make(job, api), seen))
    return seen


def advance(job_id: str, shown: Shown, status: JobStatus = JobStatus.SUCCEEDED) -> threading.Thread:
    """In the background, as a worker would: claim the job, record ``STEPS``, then end it. Each change waits
    until the follower has shown the one before (the job still queued first), whatever the machine's speed."""
    engine = make_engine(os.environ["MLPQ_DATABASE_URL"])

    def work() -> None:
        try:
            shown.expect(JobStatus.QUEUED, 0)
            with engine.begin() as connection:
                jobs.claim_job(connection, job_id, "test-host")
            shown.expect(JobStatus.RUNNING, 0)
            for done, step in enumerate(STEPS, 1):
                with engine.begin() as connection:
                    jobs.add_metrics(connection, job_id, 1,
                                     [(step, {"f_best": 1.0 / (step + 1), "points": [[1, 2, 3]]})])
                shown.expect(JobStatus.RUNNING, done)
        finally:  # end the job whatever was shown, so that the follower returns
            with engine.begin() as connection:
                jobs.finish_job(connection, job_id, 1, status, result={"f": 0.002, "headline": "f=0.002 at (3, 2)"},
                                error=None if status is JobStatus.SUCCEEDED else "diverged: f is not finite")
            engine.dispose()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_watch_without_a_terminal_prints_a_line_per_step_then_the_final_step_and_the_result(shown: Shown) -> None:
    job_id = add_job("himmelblau", PARAMS, status=JobStatus.QUEUED)
    worker = advance(job_id, shown)
    result = mlpq("watch", job_id[:8])
    worker.join()
    assert result.exit_code == 0, result.output
    assert shown.missed == []
    assert [line for line in result.stderr.splitlines()] == [
        "  step 0/300: f_best=1", "  step 100/300: f_best=0.00990099", "  step 200/300: f_best=0.00497512",
        "  step 300/300: f=0.002 at (3, 2)"]
    assert f"job       {job_id}" in result.stdout and "result    f=0.002 at (3, 2)" in result.stdout


def test_watch_exits_1_when_the_job_fails(shown: Shown) -> None:
    job_id = add_job("himmelblau", PARAMS, status=JobStatus.QUEUED)
    worker = advance(job_id, shown, JobStatus.FAILED)
    result = mlpq("watch", job_id)
    worker.join()
    assert result.exit_code == 1 and "status    failed" in result.stdout


def test_watch_json_prints_only_the_job() -> None:
    job_id = add_job("mnist", {"epochs": 1}, result={"test_accuracy": 0.9}, metrics=[(1, {"test_accuracy": 0.9})])
    result = mlpq("watch", job_id, "--json")
    assert result.exit_code == 0 and result.stderr == "" and '"test_accuracy": 0.9' in result.stdout


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What the progress display writes, as if stderr were a 100-column terminal."""
    buffer = io.StringIO()
    monkeypatch.setattr(progress, "stderr_console",
                        lambda: Console(file=buffer, force_terminal=True, width=100, color_system=None))
    yield buffer


def test_watch_on_a_terminal_shows_a_bar_that_ends_full(terminal: io.StringIO, shown: Shown) -> None:
    job_id = add_job("himmelblau", PARAMS, status=JobStatus.QUEUED)
    worker = advance(job_id, shown)
    result = mlpq("watch", job_id)
    worker.join()
    assert result.exit_code == 0 and result.stderr == "" and shown.missed == []
    frames = [ANSI.sub("", frame).strip() for frame in re.split(r"[\r\n]", terminal.getvalue())]
    frames = [frame for frame in frames if frame]
    states = [re.search(r"step (\d+)/300 (.*?) (?:-|\d):", frame).groups() for frame in frames]
    assert [state for state, _repeats in groupby(states)] == [
        ("0", "queued"), ("0", "running"), ("0", "f 1"), ("100", "f 0.009901"), ("200", "f 0.004975"),
        ("300", "f 0.004975")], frames  # each state in turn, none skipped
    assert any(re.fullmatch(rf"{job_id[:8]} [━╸╺ ]+ step 100/300 f 0\.009901 \d:\d\d:\d\d ETA \d:\d\d:\d\d", frame)
               for frame in frames), frames
    assert re.fullmatch(rf"{job_id[:8]} ━{{16}} step 300/300 f 0\.004975 \d:\d\d:\d\d ETA 0:00:00", frames[-1])


def test_the_bar_shows_mnist_epochs_loss_and_accuracy() -> None:
    buffer = io.StringIO()
    job_id = add_job("mnist", {"epochs": 4}, status=JobStatus.RUNNING)
    view = Client(Settings.from_env()).get(job_id)
    bar = progress.Bar(view.job, Console(file=buffer, force_terminal=True, width=100, color_system=None))
    bar.metric(MetricRecord(step=1, values={"train_loss": 0.5, "test_loss": 0.4, "test_accuracy": 0.875}))
    bar.poll(view.job)
    bar.close()
    last = ANSI.sub("", buffer.getvalue()).strip().splitlines()[-1]
    assert re.fullmatch(rf"{job_id[:8]} [━╸╺ ]+ epoch 1/4 loss 0\.5000 acc 87\.50% \d:\d\d:\d\d ETA \d:\d\d:\d\d", last)


def test_a_failed_job_gets_no_final_step_line(shown: Shown) -> None:
    job_id = add_job("himmelblau", PARAMS, status=JobStatus.QUEUED)
    worker = advance(job_id, shown, JobStatus.FAILED)
    result = mlpq("watch", job_id)
    worker.join()
    assert result.stderr.splitlines()[-1] == "  step 200/300: f_best=0.00497512"


def test_a_job_whose_last_step_is_recorded_gets_no_extra_line() -> None:
    job_id = add_job("mnist", {"epochs": 2}, result={"test_accuracy": 0.9, "headline": "test accuracy 90.00%"},
                     metrics=[(1, {"test_accuracy": 0.8}), (2, {"test_accuracy": 0.9})])
    result = mlpq("watch", job_id)
    assert result.stderr.splitlines() == ["  epoch 1/2: test_accuracy=0.8", "  epoch 2/2: test_accuracy=0.9"]


@pytest.mark.parametrize(("elapsed", "done", "total", "done_at", "left"), [
    (10.0, 1, 4, 10.0, 30.0), (14.0, 1, 4, 10.0, 26.0), (50.0, 1, 4, 10.0, 0.0), (10.0, 0, 4, 0.0, None),
    (10.0, 4, 4, 10.0, 0.0), (0.0, 2, 4, 0.0, None), (5.0, 2, None, 5.0, None)])
def test_time_left_is_at_the_pace_of_the_steps_done_less_the_time_since(
        elapsed: float, done: int, total: int | None, done_at: float, left: float | None) -> None:
    assert progress.remaining_seconds(elapsed, done, total, done_at) == left


def seconds_in(job: JobRecord, seconds: float) -> JobRecord:
    """``job`` as a poll ``seconds`` after it started finds it."""
    began = datetime(2024, 1, 1, tzinfo=timezone.utc)
    return replace(job, started_at=began, finished_at=began + timedelta(seconds=seconds))


def test_the_time_left_counts_down_during_an_epoch() -> None:
    buffer = io.StringIO()
    job = Client(Settings.from_env()).get(add_job("mnist", {"epochs": 4}, status=JobStatus.RUNNING)).job
    bar = progress.Bar(job, Console(file=buffer, force_terminal=True, width=100, color_system=None))
    shown = []
    for seconds, epoch in [(10, 1), (15, None), (20, None), (22, 2), (30, None)]:
        if epoch is not None:
            bar.metric(MetricRecord(step=epoch, values={"train_loss": 0.5}))
        bar.poll(seconds_in(job, seconds))
        shown.append(re.findall(r"ETA (\S+)", ANSI.sub("", buffer.getvalue()))[-1])
    bar.close()
    assert shown == ["0:00:30", "0:00:25", "0:00:20", "0:00:22", "0:00:14"]


def test_the_total_comes_from_the_parameters() -> None:
    himmelblau = add_job("himmelblau", PARAMS, status=JobStatus.QUEUED)
    mnist = add_job("mnist", {"epochs": 7}, status=JobStatus.QUEUED)
    api = Client(Settings.from_env())
    assert [progress.total_steps(api.get(i).job) for i in (himmelblau, mnist)] == [300, 7]


def test_ctrl_c_stops_watching_not_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = add_job("himmelblau", PARAMS, status=JobStatus.RUNNING)

    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr("mlpq.api_cli.api.time.sleep", interrupted)
        result = mlpq("watch", job_id)
    assert result.exit_code == 130
    assert result.output.strip() == f"stopped waiting; job {job_id} goes on (mlpq show {job_id[:12]})"
    assert "status    running" in mlpq("show", job_id).output


def run_next_queued_job(tmp_path: Path) -> threading.Thread:
    """A stand-in worker: runs the first job that gets queued with the real job code."""
    engine = make_engine(os.environ["MLPQ_DATABASE_URL"])

    def work() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                queued = jobs.list_jobs(connection, status=JobStatus.QUEUED)
            if queued:
                execute_job(engine, queued[0].id, device=Device("cpu"), worker_host="test-host",
                            data_dir=tmp_path, leases=LeaseKeeper(engine, 0.2))
                return
            time.sleep(0.1)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_submit_wait_prints_progress_lines_and_the_result(broker_url: str, tmp_path: Path) -> None:
    worker = run_next_queued_job(tmp_path)
    result = mlpq("--broker-url", broker_url, "submit", "himmelblau", "--start", "4,0", "--lr", "0.01",
                  "--steps", "300", "--log-every", "100", "--wait")
    worker.join()
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0].endswith("queued (himmelblau on cpu); waiting (Ctrl-C stops waiting, not the job)")
    assert [line.split(":")[0] for line in lines[1:]] == ["  step 0/300", "  step 100/300", "  step 200/300",
                                                          "  step 300/300"]
    assert "status    succeeded" in result.stdout and "nearest_minimum: [3.58443, -1.84813]" in result.stdout
    assert redis.Redis.from_url(broker_url).llen(queue_of("cpu")) == 1  # the message the stand-in did not consume

"""A real worker keeps each job's log; ``mlpq logs --follow`` shows a running job's lines as they come and ends
with the job's last ones; Ctrl-C stops following (exit 130), not the job."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from mlpq.db.status import JobStatus
from tests.faults import helpers
from tests.jobkinds import fault_kind
from tests.jobkinds.fault_kind import Gate
from tests.services import mlpq_command, run_mlpq

pytestmark = pytest.mark.integration


class Follower:
    """``mlpq logs JOB --follow`` in a process of its own, its output read as it comes."""

    def __init__(self, env: Mapping[str, str], job_id: str) -> None:
        self.process = subprocess.Popen(mlpq_command("logs", job_id, "--follow"), env=dict(env), text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def end(self, timeout: float = 60) -> tuple[int, str]:
        """Its exit status and what it said on stderr, once it has ended."""
        code = self.process.wait(timeout)
        self.reader.join(timeout)
        assert self.process.stderr is not None
        return code, self.process.stderr.read()


def test_follow_shows_the_log_live_and_ends_with_the_job_and_ctrl_c_is_130(fault_env: dict[str, str], gate: Gate,
                                                                           tmp_path: Path) -> None:
    env = fault_kind.worker_env(fault_env)
    worker = helpers.new_worker(env, tmp_path / "worker.log")
    try:
        job_id, _ = helpers.submit_and_hold(env, gate)
        follower, interrupted = Follower(env, job_id), Follower(env, job_id)
        for each in (follower, interrupted):
            helpers.eventually(lambda: each.saw("blocking until"), 60, "the running job's line")
        interrupted.process.send_signal(signal.SIGINT)
        assert interrupted.end() == (130, f"stopped following; job {job_id} goes on (mlpq show {job_id[:12]})\n")
        assert follower.process.poll() is None and helpers.job(env, job_id).status is JobStatus.RUNNING
        gate.open()
        code, errors = follower.end()
        assert code == 0 and errors == ""
        assert [line.split(" ", 2)[2] for line in follower.lines] == [
            f"#1 worker received by {helpers.job(env, job_id).worker_host}",
            f"#1 worker attempt 1 started on {helpers.job(env, job_id).worker_host} (cpu)",
            f"#1 job    blocking until {gate.release} exists", "#1 job    released", "#1 worker attempt 1 succeeded"]

        logged = helpers.submit(env, "fault", action="log", lines=2, message="hi \x1b[2J")
        assert helpers.finished(env, logged).status is JobStatus.SUCCEEDED
    finally:
        worker.stop()
    done = run_mlpq("logs", logged, "--json", env=env)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(row["source"], row["level"], row["line"]) for row in rows[2:5]] == [
        ("job", "INFO", "hi \x1b[2J 0"), ("job", "INFO", "hi \x1b[2J 1"), ("stdout", "INFO", "hi \x1b[2J on stdout")]
    assert rows[5]["level"] == "WARNING" and "UserWarning: hi \x1b[2J" in rows[5]["line"]
    assert rows[-1]["line"] == "attempt 1 succeeded"
    shown = run_mlpq("logs", logged, env=env).stdout
    assert "hi \\x1b[2J on stdout" in shown and "\x1b" not in shown

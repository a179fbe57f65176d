"""Command jobs through real workers: only workers that allow them take them; the example script swept, its
results, log, artifacts and figure read back; a cancel and a time limit leave no process behind; a worker
killed with SIGKILL leaves none either, and another worker resumes its job from the checkpoint."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from mlpq.api_cli import progress
from mlpq.db.status import JobStatus
from tests.faults import helpers
from tests.services import WorkerProcess, run_mlpq

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "train_mnist.py")
GRANDCHILD = """
import os, subprocess, sys, time
child = subprocess.Popen(["sleep", "1000"])
open(sys.argv[1] + ".tmp", "w").write(str(child.pid))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(1)
"""


@pytest.fixture
def command_env(fault_env: dict[str, str], mnist_root: Path) -> dict[str, str]:
    return {**fault_env, "MLPQ_DATA_DIR": str(mnist_root), "MLPQ_COMMAND_GRACE_SECONDS": "2"}


@pytest.fixture
def command_worker(command_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    worker = helpers.new_worker(command_env, tmp_path / "commands.log", "--allow-commands", "--hostname", "runs")
    yield worker
    worker.stop()


def mlpq_json(env: Mapping[str, str], *args: str) -> object:
    done = run_mlpq(*args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def submit(env: Mapping[str, str], *args: str) -> str:
    done = run_mlpq("submit", "command", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["id"]


def gone(pid: int, timeout: float = 30) -> bool:
    """Whether process ``pid`` ends (or is a zombie) within ``timeout`` seconds."""
    def ended() -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + timeout
    while not ended():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_only_a_worker_that_allows_commands_takes_them(command_env: dict[str, str], tmp_path: Path) -> None:
    plain = helpers.new_worker(command_env, tmp_path / "plain.log", "--hostname", "plain")
    try:
        job_id = submit(command_env, "--", sys.executable, "-c", "from mlpq import job; job.result(ok=1)")
        client = helpers.client(command_env)
        queued = client.get(job_id).job
        assert queued.status is JobStatus.QUEUED
        assert progress.QueuedHint(client).text(queued) == \
            "still queued: no live worker runs commands on cpu (mlpq workers)"
        allowing = helpers.new_worker({**command_env, "MLPQ_ALLOW_COMMANDS": "1"}, tmp_path / "allowing.log",
                                      "--hostname", "allowing")  # the setting, where the others give the flag
        try:
            finished = helpers.finished(command_env, job_id)
            listed = {w["host"]: w["commands"] for w in mlpq_json(command_env, "workers", "--json")}  # type: ignore
            table = run_mlpq("workers", env=command_env).stdout
        finally:
            allowing.stop()
    finally:
        plain.stop()
    assert finished.status is JobStatus.SUCCEEDED and finished.worker_host == "allowing"
    assert finished.result == {"exit_code": 0, "ok": 1}
    assert listed == {"plain": False, "allowing": True} and "COMMANDS" in table
    assert job_id not in plain.log()


def test_the_example_swept_through_a_worker(command_worker: WorkerProcess, command_env: dict[str, str],
                                             tmp_path: Path) -> None:
    done = run_mlpq("submit", "command", "--workdir", str(ROOT), "--param", "lr=0.01,0.05", "--wait", "--",
                    sys.executable, EXAMPLE, "--lr", "{lr}", "--epochs", "2", "--limit", "600",
                    "--batch-size", "100", env=command_env, timeout=300)
    assert done.returncode == 0, done.stderr
    sweep = [line.split()[0] for line in done.stdout.splitlines() if " queued (command on cpu)" in line]
    assert len(sweep) == 2
    results = run_mlpq("results", env=command_env).stdout
    assert "…/python …/train_mnist.py --lr 0.01" in results and "(lr=0.05)" in results
    shown = mlpq_json(command_env, "show", sweep[0], "--json")
    assert [m["step"] for m in shown["metrics"]] == [1, 2]  # type: ignore[index]
    assert set(shown["result"]) == {"exit_code", "test_accuracy", "epochs"}  # type: ignore[index]
    log = run_mlpq("logs", sweep[0], env=command_env).stdout
    assert "epoch 2: train loss" in log and "stdout" in log
    [artifact] = mlpq_json(command_env, "artifacts", sweep[0], "--json")  # type: ignore[misc]
    assert artifact["name"] == "model.pt"
    assert run_mlpq("download", sweep[0], "model.pt", "-o", str(tmp_path / "model.pt"), env=command_env).returncode == 0
    assert (tmp_path / "model.pt").stat().st_size == artifact["size"]
    compared = run_mlpq("compare", *sweep, env=command_env).stdout
    assert compared.splitlines()[0].split()[3:5] == ["COMMAND", "LR"], compared
    plotted = run_mlpq("plot", *sweep, "-o", str(tmp_path / "sweep.png"), env=command_env)
    assert plotted.returncode == 0 and (tmp_path / "sweep.png").stat().st_size > 0, plotted.stderr


@pytest.mark.parametrize("stop", ["cancel", "time limit"])
def test_a_stopped_job_leaves_no_process(command_worker: WorkerProcess, command_env: dict[str, str],
                                         tmp_path: Path, stop: str) -> None:
    pid_file = tmp_path / "grandchild.pid"
    timeout = ["--timeout", "3"] if stop == "time limit" else []
    job_id = submit(command_env, *timeout, "--", sys.executable, "-c", GRANDCHILD, str(pid_file))
    pid = int(helpers.eventually(lambda: pid_file.exists() and pid_file.read_text(), 60, "the grandchild"))
    if stop == "cancel":
        assert run_mlpq("cancel", job_id, env=command_env).returncode == 0
    ended = helpers.finished(command_env, job_id)
    assert gone(pid)
    if stop == "cancel":
        assert ended.status is JobStatus.CANCELLED
    else:
        assert ended.status is JobStatus.FAILED and ended.error == "time limit: exceeded 3 s"


def test_a_killed_worker_leaves_no_process_and_another_resumes_from_the_checkpoint(
        command_env: dict[str, str], tmp_path: Path) -> None:
    first = helpers.new_worker(command_env, tmp_path / "first.log", "--allow-commands", "--hostname", "first")
    marker = tmp_path / "first-epoch-done"
    script = tmp_path / "resumable.py"
    script.write_text(f"""
import os, subprocess, sys, time
from mlpq import job
state = os.path.join(os.environ["MLPQ_CHECKPOINT_DIR"], "epoch")
start = int(open(state).read()) + 1 if os.path.exists(state) else 1
print("starting at epoch", start, flush=True)
for epoch in range(start, 3):
    job.report(epoch, loss=1 / epoch)
    open(state, "w").write(str(epoch))
    job.checkpoint()
    if epoch == 1:
        child = subprocess.Popen(["sleep", "1000"])
        open({str(marker)!r} + ".tmp", "w").write(str(child.pid))
        os.rename({str(marker)!r} + ".tmp", {str(marker)!r})
        while True:
            time.sleep(1)
job.result(resumed_at=start)
""")
    job_id = submit(command_env, "--", sys.executable, str(script))
    try:
        pid = int(helpers.eventually(lambda: marker.exists() and marker.read_text(), 60, "epoch 1 kept"))
    finally:
        helpers.kill_worker(first)
    assert gone(pid)
    second = helpers.new_worker(command_env, tmp_path / "second.log", "--allow-commands", "--hostname", "second")
    try:
        ended = helpers.finished(command_env, job_id)
    finally:
        second.stop()
    assert ended.status is JobStatus.SUCCEEDED and ended.worker_host == "second", ended.error
    assert ended.result == {"exit_code": 0, "resumed_at": 2}

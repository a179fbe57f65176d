"""The command runner outside a worker: exits, output, reports, artifacts, checkpoints, and stopping the group."""

from __future__ import annotations

import io
import logging
import os
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlpq import job
from mlpq.kinds.command import CommandSpec
from mlpq.models import command
from mlpq.models.context import RunContext, StoredFile

GRANDCHILD = """
import os, signal, subprocess, sys, time
if "ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen(["sleep", "1000"])
open(sys.argv[1] + ".tmp", "w").write(str(child.pid))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(1)
"""


class Recorded:
    """A context that keeps what the runner hands it."""

    def __init__(self, check: Callable[[], None] = lambda: None, resumed: Path | None = None) -> None:
        self.metrics: list[tuple[int, dict[str, Any]]] = []
        self.artifacts: dict[str, bytes] = {}
        self.checkpoints: list[bytes] = []
        self.ctx = RunContext("cpu", lambda step, values: self.metrics.append((step, dict(values))), Path("/tmp"),
                              check=check, save_artifact=self.save, checkpoint=self.keep, resumed=resumed,
                              job_id="job-1")

    def save(self, name: str, source: bytes | Path) -> StoredFile:
        self.artifacts[name] = source if isinstance(source, bytes) else source.read_bytes()
        return StoredFile(name, len(self.artifacts[name]), "")

    def keep(self, source: bytes | Path) -> None:
        self.checkpoints.append(source if isinstance(source, bytes) else source.read_bytes())


def python(code: str, *args: str, **fields: Any) -> CommandSpec:
    return CommandSpec(argv=[sys.executable, "-c", code, *args], **fields)


def gone(pid: int, timeout: float = 20) -> bool:
    """Whether process ``pid`` ends (or is a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_a_script_reports_metrics_results_artifacts_and_checkpoints(caplog: pytest.LogCaptureFixture) -> None:
    code = """
import os, sys
from mlpq import job
print("on stdout", os.environ["MLPQ_JOB_ID"], "MLPQ_DATABASE_URL" in os.environ, os.environ["GREETING"])
sys.stdout.flush()
sys.stderr.buffer.write(b"bad \\xff byte\\n")
for step in range(3):
    job.report(step, loss=1 / (step + 1))
open(os.path.join(os.environ["MLPQ_CHECKPOINT_DIR"], "state"), "w").write("epoch 2")
job.checkpoint()
job.result(accuracy=0.5)
artifacts = os.environ["MLPQ_ARTIFACT_DIR"]
open(os.path.join(artifacts, "model.pt"), "w").write("weights")
os.symlink("/etc/passwd", os.path.join(artifacts, "passwd"))
"""
    recorded = Recorded()
    with caplog.at_level(logging.INFO):
        result = command.run(python(code, env={"GREETING": "hi"}), recorded.ctx)
    assert result == {"exit_code": 0, "accuracy": 0.5}
    assert recorded.metrics == [(0, {"loss": 1.0}), (1, {"loss": 0.5}), (2, {"loss": 1 / 3})]
    assert recorded.artifacts == {"model.pt": b"weights"}  # the link pointing outside is not followed
    with tarfile.open(fileobj=io.BytesIO(recorded.checkpoints[0])) as tar:
        assert tar.extractfile("./state").read() == b"epoch 2"  # type: ignore[union-attr]
    lines = [(r.name, r.getMessage()) for r in caplog.records]
    assert ("mlpq.job.stdout", "on stdout job-1 False hi") in lines
    assert ("mlpq.job.stderr", "bad \ufffd byte") in lines
    assert any("passwd not kept" in text for _, text in lines)


def test_a_diverged_loss_is_reported_as_null_and_later_reports_still_arrive() -> None:
    code = """
from mlpq import job
job.report(1, loss=float("nan"), accuracy=0.1)
job.report(2, loss=float("inf"), history=[1.0, float("-inf")])
job.report(3, loss=0.5)
job.result(loss=float("nan"), note="diverged")
"""
    recorded = Recorded()
    result = command.run(python(code), recorded.ctx)
    assert recorded.metrics == [(1, {"loss": None, "accuracy": 0.1}), (2, {"loss": None, "history": [1.0, None]}),
                                (3, {"loss": 0.5})]
    assert result == {"exit_code": 0, "loss": None, "note": "diverged"}


@pytest.mark.parametrize(("code", "reason", "detail"), [
    ("import sys; print('first', file=sys.stderr); print('why', file=sys.stderr); sys.exit(3)", "exit code 3", "why"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "killed by SIGKILL", ""),
])
def test_a_program_that_fails_says_how(code: str, reason: str, detail: str) -> None:
    with pytest.raises(command.ProgramFailed) as failed:
        command.run(python(code), Recorded().ctx)
    assert (failed.value.reason, str(failed.value)) == (reason, detail)


def test_a_missing_program_or_workdir_is_named(tmp_path: Path) -> None:
    with pytest.raises(command.ProgramFailed) as failed:
        command.run(CommandSpec(argv=["train.py"]), Recorded().ctx)
    assert (failed.value.reason, str(failed.value)) == ("program not found", "train.py")
    with pytest.raises(command.WorkdirMissing) as missing:
        command.run(python("pass", workdir=str(tmp_path / "gone")), Recorded().ctx)
    assert str(missing.value) == str(tmp_path / "gone")


def test_the_program_runs_in_its_workdir(tmp_path: Path) -> None:
    code = "import os; from mlpq import job; job.result(cwd=os.getcwd())"
    assert command.run(python(code, workdir=str(tmp_path)), Recorded().ctx)["cwd"] == str(tmp_path)


def test_malformed_reports_are_skipped_and_a_closed_socket_ends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    code = """
import os, socket
from mlpq import job
channel = socket.socket(fileno=int(os.environ["MLPQ_REPORT_FD"]))
channel.sendall(b"not json\\n[1]\\n{\\"report\\": -1, \\"metrics\\": {}}\\n{\\"report\\": 1, \\"metrics\\": {\\"x\\": NaN}}\\n")
channel.sendall(b"{" + b"x" * 70000 + b"\\n")
job.report(5, loss=0.25)
channel.close()
job.report(6, loss=0.125)  # the socket is gone: nothing, no error
job.checkpoint()
print("went on")
"""
    recorded = Recorded()
    with caplog.at_level(logging.INFO):
        assert command.run(python(code), recorded.ctx) == {"exit_code": 0}
    assert recorded.metrics == [(5, {"loss": 0.25})]
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped a line")]
    assert len(skipped) == 5
    assert ("mlpq.job.stdout", "went on") in [(r.name, r.getMessage()) for r in caplog.records]


def test_a_flood_of_output_is_logged_up_to_the_cap_and_the_job_ends(monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(command, "LOGGED_BYTES", 1 << 20)
    code = "import sys\nline = b'y' * 99 + b'\\n'\nfor _ in range(200_000): sys.stdout.buffer.write(line)"
    with caplog.at_level(logging.INFO):
        assert command.run(python(code), Recorded().ctx) == {"exit_code": 0}
    logged = [r for r in caplog.records if r.name == "mlpq.job.stdout"]
    assert len(logged) == (1 << 20) // 100 + 1  # 20 MB written, 1 MiB logged
    assert any("past 1 MiB is not logged" in r.getMessage() for r in caplog.records)


def test_a_flood_of_reports_is_kept_up_to_the_cap_and_the_job_ends(monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(command, "MAX_REPORTS", 1000)
    monkeypatch.setattr(command, "QUEUED_EVENTS", 8)  # the script's writes wait on a full queue
    code = "from mlpq import job\nfor step in range(20_000): job.report(step, loss=0.5)\njob.result(done=True)"
    recorded = Recorded()
    with caplog.at_level(logging.INFO):
        assert command.run(python(code), recorded.ctx) == {"exit_code": 0, "done": True}
    assert [step for step, _ in recorded.metrics] == list(range(1000))
    assert any("more than 1000 times" in r.getMessage() for r in caplog.records)


def test_a_resumed_attempt_finds_its_checkpoint(tmp_path: Path) -> None:
    archive = tmp_path / "kept.tar"
    with tarfile.open(archive, "w") as tar:
        (tmp_path / "state").write_text("epoch 7")
        tar.add(tmp_path / "state", arcname="./state")
    code = "import os; from mlpq import job; job.result(state=open(os.environ['MLPQ_CHECKPOINT_DIR'] + '/state').read())"
    assert command.run(python(code), Recorded(resumed=archive).ctx)["state"] == "epoch 7"


class Stop(Exception):
    pass


@pytest.mark.parametrize("ignore_term", [False, True])
def test_a_stop_ends_the_whole_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ignore_term: bool) -> None:
    monkeypatch.setenv(command.GRACE_VARIABLE, "1")
    pid_file = tmp_path / "pid"

    def check() -> None:
        if pid_file.exists():
            raise Stop

    args = [str(pid_file), *(["ignore-term"] if ignore_term else [])]
    with pytest.raises(Stop):
        command.run(python(GRANDCHILD, *args), Recorded(check).ctx)
    assert gone(int(pid_file.read_text()))


def test_outside_mlpq_the_helper_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(job.REPORT_FD_VARIABLE, raising=False)
    monkeypatch.setattr(job, "_channel", None)
    monkeypatch.setattr(job, "_closed", False)
    job.report(1, loss=0.5)
    job.result(accuracy=1.0)
    job.checkpoint()
    assert job._closed and job._channel is None


def test_the_supervisor_ends_the_group_when_its_parent_dies(tmp_path: Path) -> None:
    """The runner's process killed with SIGKILL (as a worker is): the program and its child go too."""
    import signal
    import subprocess

    pid_file = tmp_path / "pid"
    driver = ("import os, sys\nfrom pathlib import Path\nos.environ['MLPQ_COMMAND_GRACE_SECONDS'] = '1'\n"
              "from mlpq.kinds.command import CommandSpec\nfrom mlpq.models import command\n"
              "from mlpq.models.context import RunContext\n"
              f"command.run(CommandSpec(argv=[sys.executable, '-c', {GRANDCHILD!r}, {str(pid_file)!r}, 'ignore-term']),"
              " RunContext('cpu', lambda s, m: None, Path('/tmp')))\n")
    runner = subprocess.Popen([sys.executable, "-c", driver])
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(runner.pid, signal.SIGKILL)
    finally:
        runner.wait()
    assert gone(int(pid_file.read_text()))

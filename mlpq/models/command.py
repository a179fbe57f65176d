"""The ``command`` kind's runner: the user's program under a supervising parent, its output in the job's log,
its reports as metrics and results, its files as artifacts and checkpoints (torch-free).

The program runs in a process group of its own led by ``command_supervisor`` (which ends the group when the
program ends or this process dies), in its workdir, with this worker's environment (its ``MLPQ_*`` settings
left out, its device pinning kept) plus ``MLPQ_JOB_ID``, ``MLPQ_ARTIFACT_DIR``, ``MLPQ_CHECKPOINT_DIR``,
``MLPQ_DATA_DIR``, ``MLPQ_REPORT_FD`` (``mlpq.job``'s socket) and the job's own variables.

Threads read its stdout, stderr and reports; everything that touches the ledger (``ctx.progress``,
``ctx.checkpoint``, ``ctx.check``) runs here on the calling thread. A cancel or a time limit (an exception
raised here) SIGTERMs the group, then SIGKILLs it after ``MLPQ_COMMAND_GRACE_SECONDS``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from mlpq.job import ACK, REPORT_FD_VARIABLE
from mlpq.kinds.command import CommandSpec
from mlpq.models import command_supervisor
from mlpq.models.context import JobError, RunContext
from mlpq.redact import one_line

log = logging.getLogger(__name__)
stdout_log = logging.getLogger("mlpq.job.stdout")
stderr_log = logging.getLogger("mlpq.job.stderr")

SUPERVISOR = command_supervisor.__file__
GRACE_VARIABLE = "MLPQ_COMMAND_GRACE_SECONDS"
DEFAULT_COMMAND_GRACE_S = 10.0
"""``Settings.command_grace_seconds``' default (the worker checked the variable when it started)."""
CHECK_S = 0.1
"""How often the stop check runs while the program is quiet."""
LINE_BYTES = 64 * 1024
"""A longer output line is logged in pieces of this size; a longer report line is refused."""
LOGGED_BYTES = 64 * 1024 * 1024
"""Each stream's output past this is read and dropped, not logged (the job's log has its own cap below it)."""
MAX_REPORTS = 100_000
"""Reports past this many are dropped (logged once)."""
MAX_RESULT_BYTES = 64 * 1024
QUEUED_EVENTS = 1024
"""Reports waiting for this thread; past it the script's writes wait (its socket fills)."""
REASON_CHARS = 200


class ProgramFailed(JobError):
    """The program did not exit 0: ``reason`` says how it ended, the message its last line on stderr."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail)
        self.reason = reason


class WorkdirMissing(JobError):
    reason = "workdir missing"


def grace_seconds() -> float:
    """``MLPQ_COMMAND_GRACE_SECONDS`` (checked when the worker started), default 10."""
    try:
        return max(0.0, float(os.environ.get(GRACE_VARIABLE) or DEFAULT_COMMAND_GRACE_S))
    except ValueError:
        return DEFAULT_COMMAND_GRACE_S


def program_env(spec: CommandSpec, ctx: RunContext, scratch: Path, report_fd: int) -> dict[str, str]:
    """The worker's environment without its settings (credentials among them), and what the job adds."""
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith("MLPQ_")}
    env.update({"MLPQ_JOB_ID": ctx.job_id or "", "MLPQ_ARTIFACT_DIR": str(scratch / "artifacts"),
                "MLPQ_CHECKPOINT_DIR": str(scratch / "checkpoint"), "MLPQ_DATA_DIR": str(ctx.data_dir),
                REPORT_FD_VARIABLE: str(report_fd)})
    env.update(spec.env)
    return env


def read_output(stream: IO[bytes], logger: logging.Logger, last: list[str] | None, done: Callable[[], None]) -> None:
    """Log each line of ``stream`` (invalid UTF-8 replaced) until EOF, up to ``LOGGED_BYTES``; keep the last
    non-empty one in ``last``."""
    logged = 0
    try:
        for line in iter(lambda: stream.readline(LINE_BYTES), b""):
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if last is not None and text.strip():
                last[:] = [text]
            if logged < LOGGED_BYTES:
                logged += len(line)
                logger.info("%s", text)
                if logged >= LOGGED_BYTES:
                    log.warning("the program's %s past %d MiB is not logged", logger.name.rsplit(".", 1)[-1],
                                LOGGED_BYTES >> 20)
    finally:
        stream.close()
        done()


def parse_report(line: bytes) -> tuple[str, Any] | str:
    """One ``mlpq.job`` line as an event, or why it is refused."""
    if len(line) > LINE_BYTES:
        return f"a report line over {LINE_BYTES:,} bytes"

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a value a job may report")

    try:
        message = json.loads(line, parse_constant=refuse)
    except ValueError as exc:
        return f"not JSON: {one_line(str(exc), 80)}"
    if not isinstance(message, dict):
        return "not a JSON object"
    if "report" in message:
        step, metrics = message.get("report"), message.get("metrics")
        if type(step) is not int or not 0 <= step < 2**63 or not isinstance(metrics, dict):
            return "a report needs a step (a whole number ≥ 0) and metrics (an object)"
        return "report", (step, metrics)
    if "result" in message:
        values = message["result"]
        if not isinstance(values, dict) or len(line) > MAX_RESULT_BYTES:
            return f"a result needs values (an object, under {MAX_RESULT_BYTES:,} bytes)"
        return "result", values
    if message.get("checkpoint") is True:
        return "checkpoint", None
    return "neither a report, a result nor a checkpoint"


class Run:
    """One start of the program: its supervisor, the threads that read it, the events they hand over."""

    def __init__(self, spec: CommandSpec, ctx: RunContext, scratch: Path) -> None:
        self.spec, self.ctx, self.scratch = spec, ctx, scratch
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue(QUEUED_EVENTS)
        self.stopping = threading.Event()
        self.last_stderr: list[str] = []
        self.result: dict[str, Any] = {}
        self.reports = 0
        self.ours, theirs = socket.socketpair()
        status_read, status_write = os.pipe()
        self.status_read = status_read
        self.grace_s = grace_seconds()
        try:
            self.supervisor = subprocess.Popen(
                [sys.executable, "-I", SUPERVISOR, str(os.getpid()), str(status_write), str(self.grace_s), "--",
                 *spec.argv],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=spec.workdir,
                env=program_env(spec, ctx, scratch, theirs.fileno()), pass_fds=(status_write, theirs.fileno()),
                start_new_session=True)
        finally:
            os.close(status_write)
            theirs.close()
        assert self.supervisor.stdout is not None and self.supervisor.stderr is not None
        self.producers = 4
        self.start(read_output, self.supervisor.stdout, stdout_log, None, self.done)
        self.start(read_output, self.supervisor.stderr, stderr_log, self.last_stderr, self.done)
        self.start(self.read_reports)
        self.start(self.wait_supervisor)

    @staticmethod
    def start(target: Callable[..., None], *args: Any) -> None:
        threading.Thread(target=target, args=args, daemon=True, name=f"mlpq-command-{target.__name__}").start()

    def done(self) -> None:
        """What a reading thread hands over last."""
        self.put(("done", None))

    def put(self, event: tuple[str, Any]) -> None:
        """Hand ``event`` to the running thread, waiting while the queue is full, unless the run is stopping."""
        while not self.stopping.is_set():
            try:
                self.events.put(event, timeout=0.5)
                return
            except queue.Full:
                continue

    def read_reports(self) -> None:
        try:
            with self.ours.makefile("rb") as lines:
                for line in iter(lambda: lines.readline(LINE_BYTES + 1), b""):
                    event = parse_report(line)
                    while not line.endswith(b"\n") and line:  # the rest of an overlong line is read and dropped
                        line = lines.readline(LINE_BYTES)
                    if isinstance(event, str):
                        log.warning("skipped a line from mlpq.job: %s", event)
                    else:
                        self.put(event)
        except OSError:  # the socket closed under us while stopping
            pass
        finally:
            self.done()

    def wait_supervisor(self) -> None:
        self.supervisor.wait()
        status = b""
        while chunk := os.read(self.status_read, 4096):
            status += chunk
        os.close(self.status_read)
        self.put(("done", status))

    def follow(self) -> bytes:
        """Hand reports to the context as they come, checking for a stop; the supervisor's status at the end."""
        status = b""
        checked = time.monotonic()
        while self.producers:
            if time.monotonic() - checked >= CHECK_S:  # also while reports flood in
                self.ctx.check()
                checked = time.monotonic()
            try:
                name, value = self.events.get(timeout=CHECK_S)
            except queue.Empty:
                continue
            if name == "done":
                self.producers -= 1
                status = value or status
            elif name == "report":
                self.report(*value)
            elif name == "result":
                self.result.update(value)
            elif name == "checkpoint":
                self.keep_checkpoint()
        self.ctx.check()
        return status

    def report(self, step: int, metrics: dict[str, Any]) -> None:
        self.reports += 1
        if self.reports <= MAX_REPORTS:
            self.ctx.progress(step, metrics)
        elif self.reports == MAX_REPORTS + 1:
            log.warning("the program reported more than %d times: later reports are dropped", MAX_REPORTS)

    def keep_checkpoint(self) -> None:
        """Keep the checkpoint directory as a tar, then let the script go on."""
        with tempfile.NamedTemporaryFile(suffix=".tar", dir=self.scratch) as archive:
            with tarfile.open(fileobj=archive, mode="w") as tar:
                tar.add(self.scratch / "checkpoint", arcname=".")
            archive.flush()
            self.ctx.checkpoint(Path(archive.name))
        try:
            self.ours.sendall(ACK)
        except OSError:
            pass

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL it after the grace; the threads stop handing events over."""
        if self.supervisor.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.supervisor.wait(self.grace_s)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.supervisor.wait()
        self.stopping.set()

    def signal_group(self, sent: signal.Signals) -> None:
        try:
            os.killpg(self.supervisor.pid, sent)  # its group: the supervisor is unreaped, so the id is its own
        except ProcessLookupError:
            pass

    def close(self) -> None:
        self.stopping.set()
        if self.supervisor.stdin is not None:
            self.supervisor.stdin.close()
        self.ours.close()


def outcome(status: bytes, run: Run, program: str) -> dict[str, Any]:
    """The result of a program that exited 0; raises ``ProgramFailed`` for any other end."""
    try:
        ended = json.loads(status)
    except ValueError:
        ended = {"signal": -(run.supervisor.returncode or -signal.SIGKILL)}
    last = one_line(run.last_stderr[0], REASON_CHARS) if run.last_stderr else ""
    if "error" in ended:
        raise ProgramFailed(str(ended["error"]), program)
    if "signal" in ended:
        try:
            name = signal.Signals(int(ended["signal"])).name
        except ValueError:
            name = f"signal {ended['signal']}"
        raise ProgramFailed(f"killed by {name}", last)
    if ended.get("code") != 0:
        raise ProgramFailed(f"exit code {ended.get('code')}", last)
    return {"exit_code": 0, **run.result}


def restore(archive: Path, directory: Path) -> None:
    """Unpack a kept checkpoint (only plain files and directories inside ``directory``)."""
    with tarfile.open(archive) as tar:
        tar.extractall(directory, filter="data")


def keep_artifacts(ctx: RunContext, directory: Path) -> None:
    """Each regular file directly in ``directory`` as an artifact; links and subdirectories are not followed."""
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            log.warning("artifact %s not kept: only regular files directly in $MLPQ_ARTIFACT_DIR are", entry.name)
            continue
        try:
            ctx.save_artifact(entry.name, Path(entry.path))
        except Exception as exc:  # one artifact refused (too large) leaves the others and the outcome alone
            log.warning("artifact %s not kept: %s", entry.name, one_line(str(exc), REASON_CHARS))


def run(spec: CommandSpec, ctx: RunContext) -> dict[str, Any]:
    """Run the program to its end; its result is ``exit_code`` 0 and the values it gave ``mlpq.job.result``."""
    if spec.workdir is not None and not os.path.isdir(spec.workdir):
        raise WorkdirMissing(spec.workdir)
    with tempfile.TemporaryDirectory(prefix="mlpq-command-") as scratch_name:
        scratch = Path(scratch_name)
        (scratch / "artifacts").mkdir()
        (scratch / "checkpoint").mkdir()
        if ctx.resumed is not None:
            restore(ctx.resumed, scratch / "checkpoint")
        program = Run(spec, ctx, scratch)
        try:
            status = program.follow()
        except BaseException:  # a cancel, a lost lease, the time limit: the whole group goes
            program.stop()
            raise
        finally:
            program.close()
            keep_artifacts(ctx, scratch / "artifacts")
        return outcome(status, program, spec.argv[0])

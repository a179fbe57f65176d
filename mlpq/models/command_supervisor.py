"""The small parent of a command job's program: no process of the job outlives the job, even a lost worker's.

Run by ``mlpq.models.command`` as ``python -I command_supervisor.py PARENT_PID STATUS_FD GRACE_S -- ARGV...``
(standard library only: it runs as a file, whatever the program's environment), as the leader of a new
process group, with the program's environment and working directory. It starts the program in its group and:

- when the program ends, writes ``{"code": N}`` or ``{"signal": S}`` to ``STATUS_FD`` (``{"error": ...}``
  if it could not start), then SIGKILLs the group, itself included, so nothing the program left behind
  lives on;
- when its parent (the worker's process) is gone (EOF on its stdin, or ``PR_SET_PDEATHSIG``'s SIGHUP),
  SIGTERMs the group, waits ``GRACE_S`` for the program and SIGKILLs the group.

SIGTERM sent to the group by the worker (cancel, time limit) reaches the program; the supervisor itself
waits on for it.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """SIGHUP this process when its parent dies (Linux); it may have died already."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGHUP, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the stdin lifeline alone
        pass
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGHUP)


def default_signals() -> None:
    """Unblock every signal and undo what the worker's process ignored: the program starts as from a shell.
    SIGPIPE stays ignored here (a write to a gone worker must fail, not kill this process before it ends the
    group); ``restore_signals`` gives the program its default."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    for number in signal.valid_signals() - {signal.SIGPIPE}:
        try:
            if signal.getsignal(number) == signal.SIG_IGN:
                signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError, TypeError):  # SIGKILL, SIGSTOP and numbers Python does not name
            pass


def end_group(program: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    """SIGTERM the group, give the program ``grace_s`` to end, then SIGKILL the group (this process too)."""
    try:
        os.killpg(0, signal.SIGTERM)
    except OSError:
        pass
    deadline = time.monotonic() + grace_s
    while program is not None and program.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(0, signal.SIGKILL)


def main(args: list[str]) -> None:
    parent, status_fd, grace_s = int(args[0]), int(args[1]), float(args[2])
    argv = args[4:]
    started: list[subprocess.Popen[bytes]] = []
    lost = threading.Event()

    def on_lost(*_: object) -> None:
        if not lost.is_set():
            lost.set()
            threading.Thread(target=end_group, args=(started[0] if started else None, grace_s), daemon=True).start()

    default_signals()
    signal.signal(signal.SIGHUP, on_lost)
    signal.signal(signal.SIGTERM, lambda *_: None)  # meant for the program; a handler, not SIG_IGN, so the
    signal.signal(signal.SIGINT, lambda *_: None)   # program starts with the default dispositions
    die_with_parent(parent)

    def watch_stdin() -> None:
        while os.read(0, 4096):
            pass
        on_lost()

    threading.Thread(target=watch_stdin, daemon=True).start()
    keep = [int(fd) for fd in os.environ.get("MLPQ_REPORT_FD", "").split(",") if fd.isdigit()]
    try:
        program = subprocess.Popen(argv, stdin=subprocess.DEVNULL, pass_fds=keep, restore_signals=True)
    except FileNotFoundError:
        status: dict[str, object] = {"error": "program not found"}
    except PermissionError:
        status = {"error": "program not executable"}
    except OSError as exc:
        status = {"error": f"program could not start: {exc.strerror or exc}"}
    else:
        started.append(program)
        code = program.wait()
        status = {"code": code} if code >= 0 else {"signal": -code}
    try:
        os.write(status_fd, json.dumps(status).encode())
    except OSError:  # the worker's process is gone: nobody to tell
        pass
    os.killpg(0, signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv[1:])

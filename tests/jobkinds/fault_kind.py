"""A job kind for tests and the GPU check only: report the process id (and its torch threads), hold device
memory, raise, block, log, or keep an artifact (``message`` repeated ``repeat`` times, as ``name``).

It is declared like any installed kind, through the ``mlpq.kinds`` entry-point group:
the ``mlpq_fault_kind-0.dist-info`` folder beside this file is what an installed
package would leave, so a process that has this folder and the repository on
``sys.path`` finds ``fault`` (see ``worker_env`` and ``visible_here``). Nothing
here imports torch at import time, so a worker can still pin its GPU first.

``block`` holds a running job at a known point, whatever the machine's speed: the
job reports step 0, writes its process id to ``running`` (if given) and waits,
checking its lease, until the file ``until`` exists; then it reports step 1 and
ends. A ``Gate`` is a test's side of it. It logs a line as it begins to block and one as it goes on.

``log`` logs ``lines`` lines ``MESSAGE I`` (INFO, logger ``tests.fault``), then one line of a command's
output on ``mlpq.job.stdout`` and a ``UserWarning`` ``MESSAGE``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from mlpq import kinds
from mlpq.kinds import Kind
from mlpq.kinds.spec import JobSpec
from mlpq.models.context import RunContext

FOLDER = Path(__file__).resolve().parent
REPO = FOLDER.parents[1]
log = logging.getLogger("tests.fault")
BLOCK_POLL_S = 0.05
"""How often a ``block`` job looks whether it may go on."""


class FaultSpec(JobSpec):
    action: Literal["pid", "allocate", "raise", "block", "artifact", "log"] = Field(
        default="pid", description="What the job does.")
    gib: Annotated[float, Field(ge=0, le=1e6)] = Field(default=0.0, description="allocate: GiB on the job's device.")
    message: Annotated[str, Field(max_length=2000)] = Field(
        default="", description="raise: the message of the RuntimeError raised; log: the text logged.")
    lines: Annotated[int, Field(ge=0, le=1_000_000)] = Field(default=0, description="log: how many lines.")
    until: Annotated[str, Field(max_length=4096)] = Field(
        default="", description="block: run until this file exists (or the job is stopped).")
    running: Annotated[str, Field(max_length=4096)] = Field(
        default="", description="block: once blocking, write the process's id to this file.")
    name: Annotated[str, Field(max_length=1000)] = Field(default="out.bin", description="artifact: its name.")
    repeat: Annotated[int, Field(ge=1, le=1 << 30)] = Field(default=1, description="artifact: copies of message.")


def run(spec: FaultSpec, ctx: RunContext) -> dict[str, Any]:
    if spec.action == "allocate":
        import torch

        torch.empty(int(spec.gib * 2**30), dtype=torch.uint8, device=ctx.device)  # allocated, then freed
    elif spec.action == "raise":
        raise RuntimeError(spec.message)
    elif spec.action == "block":
        block(spec, ctx)
    elif spec.action == "artifact":
        kept = ctx.save_artifact(spec.name, spec.message.encode() * spec.repeat)
        return {"sha256": kept.sha256, "size": kept.size, "headline": f"kept {kept.name}"}
    elif spec.action == "log":
        for index in range(spec.lines):
            log.info("%s %d", spec.message, index)
        logging.getLogger("mlpq.job.stdout").info("%s on stdout", spec.message)
        warnings.warn(spec.message, UserWarning, stacklevel=1)
    threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None  # a worker has it
    return {"pid": os.getpid(), "threads": threads, "headline": f"ran in process {os.getpid()}"}


def block(spec: FaultSpec, ctx: RunContext) -> None:
    """Report step 0, say which process blocks, run until ``spec.until`` exists, report step 1.

    The stop check runs meanwhile, so a cancel, a lost lease or a time limit still ends the job."""
    ctx.progress(0, {"released": 0})
    if spec.running:
        running = Path(spec.running)
        partial = running.with_name(f"{running.name}.{os.getpid()}")
        partial.write_text(str(os.getpid()))
        partial.replace(running)  # whole, never half written
    log.info("blocking until %s exists", spec.until)
    while not Path(spec.until).exists():
        ctx.check()
        time.sleep(BLOCK_POLL_S)
    log.info("released")
    ctx.progress(1, {"released": 1})


@dataclass(frozen=True)
class Gate:
    """A folder through which a test holds ``block`` jobs at a known point and lets them go."""

    folder: Path

    @property
    def running(self) -> Path:
        return self.folder / "running"

    @property
    def release(self) -> Path:
        return self.folder / "release"

    def params(self) -> dict[str, str]:
        """The parameters of a job that blocks at this gate."""
        return {"action": "block", "until": str(self.release), "running": str(self.running)}

    def open(self) -> None:
        """Let every job blocked at the gate, and every later one, go on."""
        self.release.touch()

    def pid(self) -> int | None:
        """The process id of the last job that reached the gate, or ``None`` before one has."""
        return int(self.running.read_text()) if self.running.exists() else None


KIND = Kind(
    name="fault",
    spec=FaultSpec,
    runner="tests.jobkinds.fault_kind:run",
    help="""Test only: report the pool process's id, allocate device memory, raise an error, or block.

    \b
    Example:
      mlpq submit fault --action raise --message 'CUDA error: out of memory'
    """,
    default_timeout_s=120,
)


def worker_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for an ``mlpq`` process (a worker) that finds the ``fault`` kind."""
    path = [str(FOLDER), str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}


@contextmanager
def visible_here() -> Iterator[None]:
    """Within the block, this process finds the ``fault`` kind too (to submit it), as if its package were
    installed; afterwards it no longer does."""
    sys.path.insert(0, str(FOLDER))
    forget_kinds()
    try:
        yield
    finally:
        sys.path.remove(str(FOLDER))
        forget_kinds()


def forget_kinds() -> None:
    """Drop what ``mlpq.kinds`` has cached, so the next look-up reads the entry points again."""
    kinds.forget()

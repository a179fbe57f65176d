"""The ``command`` kind: run the user's own program (``mlpq submit command -- python train.py``), torch-free.

The program is an argument vector, never a shell string. Only workers started with ``--allow-commands`` take
these jobs: they go to queues of their own (``mlpq.devices``). The runner is ``mlpq.models.command``; a script
reports metrics, results and checkpoints through ``mlpq.job``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlpq.kinds import Kind

MAX_ARGUMENTS = 1000
MAX_ARGUMENT_BYTES = 64 * 1024
MAX_COMMAND_BYTES = 256 * 1024
"""The argument vector's limits: arguments, bytes of one argument, bytes of them all (UTF-8)."""
MAX_ENV = 100
MAX_ENV_VALUE_BYTES = 64 * 1024
MAX_PATH_BYTES = 4096
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")
"""Besides ``MLPQ_*``: names the worker sets for the program, which a job may not override."""
SHOWN_CHARS = 80
"""How much of the command ``results``, ``show``, ``compare`` and the UI show (``--json`` shows it all)."""
SHORT_PATH_CHARS = 24
"""A path argument longer than this is shown by its last part."""


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def check_text(text: str, what: str, limit: int) -> str:
    """``text`` unless it holds a NUL (no program can be given one) or is over ``limit`` bytes."""
    if "\0" in text:
        raise ValueError(f"{what} contains a NUL character")
    if utf8_size(text) > limit:
        raise ValueError(f"{what} is over {limit:,} bytes")
    return text


def env_name_problem(name: str) -> str | None:
    """Why ``name`` may not be set for a command, or ``None`` where it may."""
    if ENV_NAME.fullmatch(name) is None:
        return f"invalid environment variable name {name!r}: use letters, digits and '_', not first a digit"
    if name.upper().startswith("MLPQ_") or name in RESERVED_ENV:
        return f"environment variable {name} is set by the worker; a job may not set it"
    return None


class CommandSpec(BaseModel):
    """A program and its arguments, where it runs and what it adds to the worker's environment (no seed: the
    program draws its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    argv: Annotated[list[str], Field(min_length=1, max_length=MAX_ARGUMENTS)] = Field(
        description="The program and its arguments.", json_schema_extra={"option": ""})
    """Given after ``--`` (its option name is empty)."""
    workdir: str | None = Field(default=None, description="Absolute directory to run in on the worker.")
    env: dict[str, str] = Field(default_factory=dict, max_length=MAX_ENV,
                                description="Environment variables added to the worker's.")
    values: dict[str, str] = Field(default_factory=dict, max_length=64, json_schema_extra={"option": "param"},
                                   description="The --param values filled into the arguments (a sweep's axes).")

    @field_validator("argv")
    @classmethod
    def _argv(cls, argv: list[str]) -> list[str]:
        if not argv[0]:
            raise ValueError("the program is empty")
        for number, argument in enumerate(argv):
            check_text(argument, f"argument {number}", MAX_ARGUMENT_BYTES)
        if sum(utf8_size(argument) + 1 for argument in argv) > MAX_COMMAND_BYTES:
            raise ValueError(f"the command is over {MAX_COMMAND_BYTES:,} bytes")
        return argv

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, workdir: str | None) -> str | None:
        if workdir is not None:
            check_text(workdir, "the workdir", MAX_PATH_BYTES)
            if not workdir.startswith("/"):
                raise ValueError(f"the workdir must be an absolute path, got {workdir!r}")
        return workdir

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            problem = env_name_problem(name)
            if problem:
                raise ValueError(problem)
            check_text(value, f"the value of {name}", MAX_ENV_VALUE_BYTES)
        return env

    @model_validator(mode="after")
    def _values(self) -> CommandSpec:
        for name, value in self.values.items():
            check_text(value, f"the value of {name}", MAX_ARGUMENT_BYTES)
        return self


def short_argument(argument: str) -> str:
    """An argument quoted as a shell would; a long path as ``…/`` and its last part (``/opt/venv/bin/python`` →
    ``…/python``)."""
    if len(argument) > SHORT_PATH_CHARS and "/" in argument.rstrip("/") and " " not in argument:
        return "…/" + shlex.quote(argument.rstrip("/").rsplit("/", 1)[1])
    return shlex.quote(argument)


def command_text(argv: list[str], limit: int | None = SHOWN_CHARS) -> str:
    """The command as a shell would quote it, long paths shortened, cut to ``limit`` characters with ``…``
    (``limit`` ``None``: all of it, as it is)."""
    if limit is None:
        return shlex.join(argv)
    text = " ".join(short_argument(argument) for argument in argv)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def shown_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The command (shortened), then each swept value by its name, then the workdir and the names of the
    variables set."""
    shown: dict[str, Any] = {"command": command_text(list(params.get("argv") or []))}
    shown.update(params.get("values") or {})
    if params.get("workdir"):
        shown["workdir"] = params["workdir"]
    if params.get("env"):
        shown["env"] = ",".join(sorted(params["env"]))
    return shown


def given_figures(result: Mapping[str, Any]) -> tuple[str, ...]:
    """The numbers the script gave ``mlpq.job.result``: ``compare`` and ``results`` columns."""
    return tuple(name for name, value in result.items()
                 if name != "exit_code" and isinstance(value, int | float) and not isinstance(value, bool))


def headline(result: Mapping[str, Any]) -> str:
    """The values the script gave ``mlpq.job.result``, else how it exited."""
    given = {name: value for name, value in result.items() if name != "exit_code"}
    if given:
        return " ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
                        for name, value in given.items())
    return f"exit {result.get('exit_code', 0)}"


KIND = Kind(
    name="command",
    spec=CommandSpec,
    runner="mlpq.models.command:run",
    help="""Run your own program on a worker that allows it (mlpq worker --allow-commands).

    Everything after -- is the program and its arguments, run as they are (no shell;
    write -- bash -c '...' for one). {NAME} in an argument is filled from --param
    NAME=V1,V2,...: several values make a sweep, one job per combination. The program
    runs in its own process group, pinned to the worker's device, with MLPQ_JOB_ID,
    MLPQ_ARTIFACT_DIR and MLPQ_CHECKPOINT_DIR set; its output goes to the job's log
    (mlpq logs ID), files it leaves in $MLPQ_ARTIFACT_DIR become artifacts, and
    mlpq.job.report / result / checkpoint give metrics, results and checkpoints.
    Exit 0 succeeds. Limits: 1,000 arguments, 64 KiB each, 256 KiB in all.

    \b
    Example:
      mlpq submit command --device cuda -- python examples/train_mnist.py --epochs 2
      mlpq submit command --workdir /srv/exp --param lr=0.01,0.05 -- python train.py --lr {lr}
    """,
    step_name="step",
    default_timeout_s=3600,
    headline=headline,
    result_figures=given_figures,
    shown_params=shown_params,
)

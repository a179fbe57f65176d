"""``mlpq submit command -- PROGRAM ARG...``: the user's own program as an argv, ``{name}`` placeholders filled
from ``--param`` grids (a sweep), checked before anything is written."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

import click

from mlpq.api_cli.context import CONTEXT
from mlpq.api_cli.params import DEVICE, POOL, AsciiIntRange
from mlpq.api_cli.sweep import MAX_SWEEP_JOBS
from mlpq.devices import Device
from mlpq.kinds import MAX_TIMEOUT_S, Kind
from mlpq.kinds.command import ENV_NAME, env_name_problem
from mlpq.redact import shown

PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``{lr}`` in an argument; ``${lr}`` is left for a shell (``bash -c '…'``)."""
OPTIONS = {"argv": "the command", "workdir": "--workdir", "env": "--env", "values": "--param"}


def parse_env(given: Sequence[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs; raises a usage error for a malformed, invalid, reserved or repeated name."""
    env: dict[str, str] = {}
    for item in given:
        name, equals, value = item.partition("=")
        if not equals:
            raise click.BadParameter(f"{shown(item)} is not NAME=VALUE", param_hint="--env")
        problem = env_name_problem(name)
        if problem:
            raise click.BadParameter(problem, param_hint="--env")
        if name in env:
            raise click.BadParameter(f"{name} is given twice", param_hint="--env")
        env[name] = value
    return env


def parse_params(given: Sequence[str]) -> dict[str, list[str]]:
    """``NAME=V1,V2,...`` grids, values in order with repeats dropped."""
    grids: dict[str, list[str]] = {}
    for item in given:
        name, equals, values = item.partition("=")
        if not equals or ENV_NAME.fullmatch(name) is None:
            raise click.BadParameter(f"{shown(item)} is not NAME=V1,V2,... (NAME: letters, digits and '_')",
                                     param_hint="--param")
        parts = values.split(",")
        if "" in parts:
            raise click.BadParameter(f"empty value in {shown(item)}: give values separated by commas",
                                     param_hint="--param")
        if name in grids:
            raise click.BadParameter(f"{name} is given twice", param_hint="--param")
        grids[name] = list(dict.fromkeys(parts))
    return grids


def fill(argv: Sequence[str], values: dict[str, str]) -> list[str]:
    return [PLACEHOLDER.sub(lambda match: values[match[1]], argument) for argument in argv]


def expand(argv: Sequence[str], grids: dict[str, list[str]]) -> list[tuple[list[str], dict[str, str]]]:
    """Each combination of the grids: the filled argv and its values. Raises a usage error for a placeholder
    without a ``--param``, a ``--param`` no argument uses, or too many combinations."""
    used = list(dict.fromkeys(name for argument in argv for name in PLACEHOLDER.findall(argument)))
    missing = [name for name in used if name not in grids]
    if missing:
        raise click.UsageError(f"{{{missing[0]}}} in the command has no --param {missing[0]}=VALUES")
    unused = [name for name in grids if name not in used]
    if unused:
        raise click.UsageError(f"--param {unused[0]} is not used: no argument has {{{unused[0]}}}")
    size = 1
    for values in grids.values():
        size *= len(values)
    if size > MAX_SWEEP_JOBS:
        raise click.UsageError(f"the sweep over --param {', '.join(grids)} has {size:,} jobs; "
                               f"at most {MAX_SWEEP_JOBS:,} at once")
    combinations = [dict(zip(grids, chosen)) for chosen in itertools.product(*grids.values())]
    return [(fill(argv, values), values) for values in combinations]


def submit_command(kind: Kind) -> click.Command:
    """``mlpq submit command``: options, then ``--`` and the program (options after the program are its own)."""

    def callback(device: Device, pool: str | None, timeout: int | None, workdir: str | None, env: tuple[str, ...],
                 param: tuple[str, ...], wait: bool, as_json: bool, program: tuple[str, ...]) -> None:
        run(click.get_current_context(), kind, device, pool, timeout, workdir, env, param, wait, as_json, program)

    params = [
        click.Option(["--device"], type=DEVICE, default="cpu", show_default=True,
                     help="cpu, cuda (any GPU) or cuda:N."),
        click.Option(["--pool"], type=POOL,
                     help="Run only on workers started with this --pool.  [default: workers without a pool]"),
        click.Option(["--timeout"], type=AsciiIntRange(1, MAX_TIMEOUT_S), metavar="SECONDS",
                     help=f"Stop the program (SIGTERM, then SIGKILL) and fail the job if it runs longer.  "
                          f"[default: {kind.default_timeout_s}]"),
        click.Option(["--workdir"], metavar="DIR",
                     help="Absolute directory on the worker to run in.  [default: the worker's]"),
        click.Option(["--env"], metavar="NAME=VALUE", multiple=True,
                     help="Add a variable to the program's environment (repeatable; not MLPQ_*, "
                          "CUDA_VISIBLE_DEVICES or CUDA_DEVICE_ORDER)."),
        click.Option(["--param"], metavar="NAME=V1,V2,...", multiple=True,
                     help="Fill {NAME} in the arguments; several values make a sweep (repeatable: their grid)."),
        click.Option(["--wait"], is_flag=True, help="Block until the job ends, show its result; exit 1 if it failed."),
        click.Option(["--json", "as_json"], is_flag=True, help="Print machine-readable JSON only on stdout."),
        click.Argument(["program"], nargs=-1, metavar="-- PROGRAM [ARG]..."),
    ]
    return click.Command(kind.name, callback=callback, params=params, help=kind.help,
                         context_settings={**CONTEXT, "allow_interspersed_args": False})


def run(ctx: click.Context, kind: Kind, device: Device, pool: str | None, timeout: int | None,
        workdir: str | None, env: tuple[str, ...], param: tuple[str, ...], wait: bool, as_json: bool,
        program: tuple[str, ...]) -> None:
    """Check everything, then submit one job or a sweep, as ``mlpq submit KIND`` does."""
    from pydantic import ValidationError

    from mlpq.api_cli import sweep
    from mlpq.api_cli.api import JobRequest
    from mlpq.api_cli.context import client
    from mlpq.api_cli.params import usage_error
    from mlpq.api_cli.reporting import announce_job, announce_sweep, follow_and_show, follow_sweep, \
        submit_and_announce

    if not program or not program[0]:
        raise click.UsageError("no command: give it after --, like: mlpq submit command -- python train.py")
    if workdir is not None and not workdir.startswith("/"):
        raise click.BadParameter(f"must be an absolute path, got {shown(workdir)}", param_hint="--workdir")
    variables, grids = parse_env(env), parse_params(param)
    jobs = expand(program, grids)
    base: dict[str, Any] = {"workdir": workdir, "env": variables}
    requests = [JobRequest(kind.name, {**base, "argv": argv, "values": values}, str(device), timeout, pool=pool)
                for argv, values in jobs]
    sweep_id = sweep.new_sweep_id() if len(requests) > 1 else None
    axes = [name for name, values in grids.items() if len(values) > 1]
    api = client(ctx)

    def announce(created: list[Any]) -> None:
        if sweep_id is None:
            announce_job(created[0], wait, as_json)
        else:
            announce_sweep(created, axes, wait, as_json)

    try:  # every job is checked before any is written
        created = submit_and_announce(lambda: api.submit_many(requests, sweep_id=sweep_id), announce)
    except ValidationError as exc:
        raise usage_error(exc, OPTIONS) from None
    if wait:
        if sweep_id is None:
            follow_and_show(ctx, api, created[0], as_json)
        else:
            follow_sweep(ctx, api, created, axes, as_json)

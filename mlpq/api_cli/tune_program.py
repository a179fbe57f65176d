"""``mlpq tune command -- PROGRAM ARG...``: tune the user's own script. Each ``--search NAME`` fills ``{NAME}`` in
the arguments of every trial's command job; the script's ``mlpq.job.report`` steps are the trial's intermediate
values and its ``mlpq.job.result`` (else its last step) the trial's value, under the ``--objective`` it names."""

from __future__ import annotations

from collections.abc import Sequence

import click

from mlpq.api_cli import search, tune
from mlpq.api_cli.command_submit import OPTIONS, PLACEHOLDER, parse_env
from mlpq.api_cli.context import CONTEXT
from mlpq.api_cli.params import AsciiIntRange, usage_error
from mlpq.api_cli.submit_commands import common_options
from mlpq.api_cli.trial_jobs import WHOLE_NUMBER, job_params
from mlpq.devices import Device
from mlpq.kinds import SEED_BOUND, Kind
from mlpq.kinds.command import ENV_NAME
from mlpq.redact import shown

OBJECTIVE = click.Option(["--objective"], metavar="NAME:min|max",
                         help="The value to optimise, as the script reports it or gives it mlpq.job.result "
                              "(required).")


def parse_dimension(text: str) -> search.Dimension:
    """``NAME=LOW..HIGH[:log]`` (whole numbers if both bounds are) or ``NAME=A,B,C`` (the texts filled in)."""
    name, equals, values = text.partition("=")
    name = name.strip()
    if not equals or ENV_NAME.fullmatch(name) is None or not values.strip():
        raise click.UsageError(f"--search {shown(text)}: give NAME=LOW..HIGH[:log] or NAME=A,B,C "
                               f"(NAME: letters, digits and '_', as in {{NAME}})")
    if ".." in values:
        low, _, high = values.partition(":")[0].partition("..")
        whole = WHOLE_NUMBER.fullmatch(low) and WHOLE_NUMBER.fullmatch(high)
        return search.parse_range(name, values.strip(), int if whole else float, [])
    parts = [part.strip() for part in values.split(",")]
    if "" in parts:
        raise click.UsageError(f"--search {name}: empty choice in {shown(values)}")
    return search.Choices(name, tuple(dict.fromkeys(parts)))


def parse_searches(texts: Sequence[str], program: Sequence[str]) -> list[search.Dimension]:
    """Every ``--search``, each once, each filling a ``{NAME}`` of the program, and every ``{NAME}`` searched."""
    if not texts:
        raise click.UsageError("give at least one --search NAME=LOW..HIGH[:log] or NAME=A,B,C for a {NAME} "
                               "in the command")
    dimensions = [parse_dimension(text) for text in texts]
    names = [dimension.name for dimension in dimensions]
    used = list(dict.fromkeys(name for argument in program for name in PLACEHOLDER.findall(argument)))
    for name in names:
        if names.count(name) > 1:
            raise click.UsageError(f"--search {name}: given more than once")
        if name not in used:
            raise click.UsageError(f"--search {name} is not used: no argument has {{{name}}}")
    missing = [name for name in used if name not in names]
    if missing:
        raise click.UsageError(f"{{{missing[0]}}} in the command has no --search {missing[0]}=...")
    return dimensions


def parse_objective(text: str | None, kind: Kind) -> search.Objective:
    """``--objective`` is required: a command declares no result fields, its script names its own."""
    if text is None:
        raise click.UsageError("give --objective NAME:min or NAME:max, a value the script reports "
                               "(mlpq.job.report) or gives mlpq.job.result")
    return search.parse_objective(text, kind)


def program_command(kind: Kind) -> click.Command:
    """``mlpq tune command``: where the program runs, the study's options, then ``--`` and the program."""

    def callback(device: Device, pool: str | None, timeout: int | None, workdir: str | None, env: tuple[str, ...],
                 seed: int | None, searches: tuple[str, ...], trials: int, parallel: int | None,
                 objective: str | None, sampler: str, pruner: str, resume: str | None, wait: bool, as_json: bool,
                 program: tuple[str, ...]) -> None:
        ctx = click.get_current_context()
        if resume is not None:
            if program or searches or workdir or env or seed is not None:
                raise click.UsageError("--resume drives the study with its own settings: give only --parallel, "
                                       "--wait and --json with it")
            tune.resume_study(ctx, resume, kind.name, parallel, wait, as_json)
            return
        if not program or not program[0]:
            raise click.UsageError("no command: give it after --, like: mlpq tune command --search "
                                   "lr=1e-4..1e-1:log --objective loss:min -- python train.py --lr {lr}")
        if workdir is not None and not workdir.startswith("/"):
            raise click.BadParameter(f"must be an absolute path, got {shown(workdir)}", param_hint="--workdir")
        fixed = {"argv": list(program), "workdir": workdir, "env": parse_env(env)}
        dimensions = parse_searches(searches, program)
        goal = parse_objective(objective, kind)
        probe = {d.name: d.low if isinstance(d, search.Range) else d.values[0] for d in dimensions}
        from pydantic import ValidationError

        try:
            kind.spec.model_validate(job_params(kind.name, fixed, probe))
        except ValidationError as exc:
            raise usage_error(exc, OPTIONS) from None
        from mlpq.api_cli.context import client

        tune.start_study(ctx, client(ctx), kind, dimensions, fixed, goal, trials=trials, parallel=parallel,
                         sampler=sampler, pruner=pruner, seed=seed, device=device, pool=pool, timeout=timeout,
                         wait=wait, as_json=as_json)

    params = [
        *common_options(kind)[:3],
        click.Option(["--workdir"], metavar="DIR",
                     help="Absolute directory on the worker to run in.  [default: the worker's]"),
        click.Option(["--env"], metavar="NAME=VALUE", multiple=True,
                     help="Add a variable to the program's environment (repeatable)."),
        click.Option(["--seed"], type=AsciiIntRange(0, SEED_BOUND - 1),
                     help="The sampler's seed.  [default: drawn and stored]"),
        *(option if option.name != "objective" else OBJECTIVE for option in tune.tune_options()),
        click.Argument(["program"], nargs=-1, metavar="-- PROGRAM [ARG]..."),
    ]
    return click.Command(kind.name, callback=callback, params=params,
                         context_settings={**CONTEXT, "allow_interspersed_args": False},
                         help="""Tune your own program: each --search NAME fills {NAME} in its arguments.

    Every trial is a command job (on workers started with --allow-commands). The
    script's mlpq.job.report(step, NAME=...) values are the trial's steps, which the
    pruner judges; mlpq.job.result(NAME=...), else the last step, is its value.
    --objective NAME:min|max names it. A range of whole numbers searches integers.

    \b
    Example:
      mlpq tune command --search lr=1e-4..1e-1:log --objective loss:min \\
          --trials 20 --pruner median -- python train.py --lr {lr}
    """)

"""``mlpq tune KIND``: a search that learns (Optuna) over a kind's spec, each trial an mlpq job of one sweep.

Only this command imports optuna, and only once its input is checked (``tune_driver``).
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any

import click

from mlpq import kinds
from mlpq.api_cli.context import CONTEXT, client
from mlpq.api_cli.params import AsciiIntRange, SWEEP_ID, usage_error
from mlpq.api_cli.submit_commands import KindGroup, common_options
from mlpq.api_cli.sweep import Axis
from mlpq.devices import Device
from mlpq.kinds import SEED_BOUND, Kind
from mlpq.redact import shown

if TYPE_CHECKING:
    import optuna

    from mlpq.api_cli import search
    from mlpq.api_cli.api import Client
    from mlpq.api_cli.study_store import DriverLock
    from mlpq.api_cli.tune_driver import StudyConfig

MAX_TRIALS = 10_000
WAIT_HELP = "Also wait until pruned trials' jobs have stopped; exit 1 if no trial succeeded."
SAMPLERS = ("tpe", "random")
PRUNERS = ("none", "median", "asha")
OWN_COMMANDS = {"command": "mlpq.api_cli.tune_program:program_command"}
"""Kinds whose ``tune`` command is written by hand (a command's program after ``--``), not generated."""


def tune_options() -> list[click.Option]:
    return [
        click.Option(["--search", "searches"], multiple=True, metavar="NAME=LOW..HIGH[:log]|NAME=A,B,C",
                     help="A field to search: a range (log scale with :log) or choices (repeatable)."),
        click.Option(["--trials"], type=AsciiIntRange(1, MAX_TRIALS), default=20, show_default=True,
                     help="Trials in the study."),
        click.Option(["--parallel"], type=AsciiIntRange(1, MAX_TRIALS),
                     help="Trials running at once.  [default: the live workers serving the device]"),
        click.Option(["--objective"], metavar="FIELD[:min|max]",
                     help="The result field to optimise.  [default: the kind's best]"),
        click.Option(["--sampler"], type=click.Choice(SAMPLERS), default="tpe", show_default=True,
                     help="Optuna's sampler, seeded by --seed."),
        click.Option(["--pruner"], type=click.Choice(PRUNERS), default="asha", show_default=True,
                     help="Stop losing trials early: none, the median rule, or asynchronous successive halving."),
        click.Option(["--resume"], type=SWEEP_ID, metavar="STUDY_ID",
                     help="Drive the study STUDY_ID again (after its driver stopped) with its own settings."),
        click.Option(["--wait"], is_flag=True, help=WAIT_HELP),
        click.Option(["--json", "as_json"], is_flag=True, help="Print machine-readable JSON only on stdout."),
    ]


def example_search(kind: Kind) -> str:
    """A ``--search`` for the kind's first bounded number field, for its help."""
    from mlpq.api_cli.spec_options import bounds, number, unwrap

    fields = sorted(kind.spec.model_fields.items(), key=lambda item: unwrap(item[1].annotation)[0] is not float)
    for name, field in fields:
        annotation, constraints = unwrap(field.annotation)
        limits = bounds(constraints + field.metadata)
        if name != "seed" and annotation in (int, float) and "min" in limits and "max" in limits:
            low, high = limits["min"], limits["max"]
            if annotation is float and limits.get("min_open"):
                return f"--search {name}={number(max(low, high / 1e4))}..{number(high)}:log"
            return f"--search {name}={number(low)}..{number(high)}"
    return "--search NAME=LOW..HIGH"


def fixed_values(fields: dict[str, Any], options: dict[str, str]) -> dict[str, Any]:
    """The kind's options given one value each (a comma list is a sweep: refused here)."""
    values = {}
    for name, value in fields.items():
        if value is None or value == ():
            continue
        if isinstance(value, Axis):
            if len(value) > 1:
                raise click.UsageError(f"{options[name]}: give one value; search several with --search {name}=...")
            value = value[0]
        values[name] = list(value) if type(value) is tuple else value
    return values


def tune_command(kind: Kind) -> click.Command:
    """``mlpq tune NAME``: the kind's options (fixed values), the common ones, and the study's."""
    from mlpq.api_cli.spec_options import option_names, spec_options

    def callback(device: Device, pool: str | None, timeout: int | None, wait: bool, as_json: bool,
                 searches: tuple[str, ...], trials: int, parallel: int | None, objective: str | None,
                 sampler: str, pruner: str, resume: str | None, **fields: Any) -> None:
        ctx = click.get_current_context()
        if resume is not None:
            given = [name for name, value in fields.items() if value not in (None, ())] + (["--search"] if searches else [])
            if given:
                raise click.UsageError("--resume drives the study with its own settings: give only --parallel, "
                                       "--wait and --json with it")
            resume_study(ctx, resume, kind.name, parallel, wait, as_json)
            return
        from mlpq.api_cli import search

        options = option_names(kind.spec)
        fixed = fixed_values(fields, options)
        dimensions = search.parse_search(searches, kind, fixed)
        goal = search.parse_objective(objective, kind)
        seed = fixed.pop("seed", None)
        probe = {**fixed, **{d.name: d.low if isinstance(d, search.Range) else d.values[0] for d in dimensions}}
        from pydantic import ValidationError

        try:
            kind.spec.model_validate({**probe, "seed": 0})
        except ValidationError as exc:
            raise usage_error(exc, options) from None
        api = client(ctx)
        start_study(ctx, api, kind, dimensions, fixed, goal, trials=trials, parallel=parallel, sampler=sampler,
                    pruner=pruner, seed=seed, device=device, pool=pool, timeout=timeout, wait=wait, as_json=as_json)

    return click.Command(kind.name, callback=callback,
                         params=[*spec_options(kind.spec), *common_options(kind)[:3], *tune_options()],
                         help=f"""Tune {kind.name}: search its options with Optuna, each trial a job (see 'mlpq tune --help').

    The other options fix a value for every trial.

    \b
    Example:
      mlpq tune {kind.name} {example_search(kind)} --trials 20 --pruner median
    """, context_settings=CONTEXT)


def default_parallel(api: Client, kind: Kind, device: Device, pool: str | None) -> int:
    """The pool processes of the live workers that take ``kind``'s jobs for ``device`` in ``pool``; at least 1."""
    from mlpq.devices import job_queue

    queue = job_queue(kind.name, str(device), pool, api.ledger)
    return max(1, sum(worker.concurrency for worker in api.workers() if queue in worker.queues))


def start_study(ctx: click.Context, api: Client, kind: Kind, dimensions: list[search.Dimension],
                fixed: dict[str, Any], goal: search.Objective, *, trials: int, parallel: int | None, sampler: str,
                pruner: str, seed: int | None, device: Device, pool: str | None, timeout: int | None, wait: bool,
                as_json: bool) -> None:
    import secrets

    from mlpq.api_cli import tune_driver
    from mlpq.api_cli.sweep import new_sweep_id

    drawn = seed if seed is not None else secrets.randbelow(SEED_BOUND)  # every trial's job and the sampler's
    if "seed" in kind.spec.model_fields:  # a command has none: its program draws its own
        fixed = {**fixed, "seed": drawn}
    config = tune_driver.StudyConfig(kind.name, tuple(dimensions), fixed, trials, goal, sampler, pruner, drawn,
                                     str(device), pool, timeout, parallel or default_parallel(api, kind, device, pool))
    study_id = new_sweep_id()
    lock = take_lock(api, study_id)
    try:
        storage = open_storage(api)
        study = tune_driver.create_study(storage, study_id, config)
        drive(ctx, api, study, config, lock, wait, as_json)
    finally:
        with suppress(Exception):
            lock.release()


def open_storage(api: Client, *, existing: str | None = None) -> optuna.storages.RDBStorage:
    """The study storage beside the ledger; with ``existing`` (the study asked for), one that is not there is a
    usage error and nothing is created."""
    import optuna

    from mlpq.api_cli.study_store import StudyNotFoundError, prepare, storage_exists, storage_for

    place = storage_for(api.settings.database_url)
    if not storage_exists(api.engine, place):
        if existing:
            raise StudyNotFoundError(f"no study {existing} in this ledger")
        prepare(api.engine, place)
    return optuna.storages.RDBStorage(place.url, engine_kwargs=place.engine_kwargs)


def take_lock(api: Client, study_id: str) -> DriverLock:
    """The study's driver lock, taken (``StudyLockedError`` if another driver has it)."""
    from mlpq import messages
    from mlpq.api_cli.study_store import DriverLock

    import redis

    from mlpq.api_cli.api import BrokerUnavailableError
    from mlpq.redact import mask_url, one_line

    lock = DriverLock.for_study(messages.connect(api.settings.broker_url), api.ledger, study_id)
    try:
        lock.acquire(study_id)
    except redis.RedisError as exc:
        raise BrokerUnavailableError(f"cannot reach the broker at {mask_url(api.settings.broker_url)}: "
                                     f"{one_line(str(exc))}") from exc
    return lock


def find_study(storage: optuna.storages.BaseStorage, prefix: str) -> str:
    """The id of the one study whose id starts with ``prefix``."""
    from mlpq.api_cli.study_store import StudyNotFoundError

    found = [study.study_name for study in storage.get_all_studies() if study.study_name.startswith(prefix)]
    if not found:
        raise StudyNotFoundError(f"no study {prefix} in this ledger")
    if len(found) > 1:
        raise StudyNotFoundError(f"study id prefix {prefix} is ambiguous: give more digits")
    return found[0]


def announce(config: StudyConfig, study_id: str) -> None:
    searched = ", ".join(d.name for d in config.dimensions)
    click.echo(f"study {study_id}: {config.kind} over {searched}, {config.trials} trials, {config.parallel} at once, "
               f"{config.sampler} sampler, {config.pruner} pruner, objective {config.objective} "
               f"(mlpq results --sweep {study_id[:8]})", err=True)


def resume_study(ctx: click.Context, study_id: str, kind_name: str | None, parallel: int | None, wait: bool,
                 as_json: bool) -> None:
    from mlpq.api_cli import tune_driver
    from mlpq.api_cli.study_store import StudyNotFoundError

    api = client(ctx)
    storage = open_storage(api, existing=study_id)
    study_id = find_study(storage, study_id)
    config = tune_driver.load_config(storage, study_id)
    if config is None:
        raise StudyNotFoundError(f"study {study_id} is not an mlpq study")
    if kind_name is not None and config.kind != kind_name:
        raise StudyNotFoundError(f"study {study_id} tunes {shown(config.kind)}, not {kind_name}")
    lock = take_lock(api, study_id)
    try:
        if parallel is not None:
            config = tune_driver.StudyConfig(**{**config.__dict__, "parallel": parallel})
        study = tune_driver.load_study(storage, study_id, config)
        done = len(study.get_trials(deepcopy=False, states=tune_driver.FINISHED))
        running = len(study.get_trials(deepcopy=False)) - done
        drive(ctx, api, study, config, lock, wait, as_json,
              f"re-attached: {done} trials told, {running} running, {config.trials - done - running} to go")
    finally:
        with suppress(Exception):
            lock.release()


def drive(ctx: click.Context, api: Client, study: optuna.Study, config: StudyConfig, lock: DriverLock, wait: bool,
          as_json: bool, note: str | None = None) -> None:
    """Run the driver to the budget, then print the study; Ctrl-C stops it (exit 130), the trials go on."""
    from mlpq.api_cli import output, tune_driver

    driver = tune_driver.Driver(api, study, config, lock, lambda line: click.echo(line, err=True),
                                api.settings.leases.db_retry_s)
    try:
        announce(config, study.study_name)
        if note:
            click.echo(note, err=True)
        driver.run()
        if wait:
            tune_driver.wait_for_jobs(api, study.study_name)
    except KeyboardInterrupt:
        click.echo(f"interrupted: the study's {len(driver.flights)} running trials go on; resume it with "
                   f"'mlpq tune --resume {study.study_name}'", err=True)
        raise click.exceptions.Exit(130) from None
    found = tune_driver.summary(api, study, config)
    if as_json:
        click.echo(output.to_json(found))
    else:
        click.echo(summary_text(found, driver.tally.missed, kinds.get(config.kind).step_name))
    if wait and found["best"] is None:
        ctx.exit(1)


def summary_text(found: dict[str, Any], missed: int, step_name: str) -> str:
    from mlpq.api_cli import output

    states: dict[str, int] = {}
    for trial in found["trials"]:
        states[trial["state"]] = states.get(trial["state"], 0) + 1
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    lines = [f"study {found['study_id']}: {len(found['trials'])} trials ({counts}), "
             f"{found['steps_trained']} {step_name}s trained" + (f"; {missed} ended while no driver ran" if missed else "")]
    best = found["best"]
    if best is None:
        lines.append("no trial succeeded")
    else:
        params = " ".join(f"{name}={output.format_value(value)}" for name, value in best["params"].items())
        lines.append(f"best: trial {best['number']} (job {best['job_id'][:output.SHORT_ID]}) "
                     f"{found['objective']}={best['value']:.6g} with {params}")
    return "\n".join(lines)


class TuneGroup(KindGroup):
    """``mlpq tune KIND``, built as ``submit``'s commands are."""

    own_commands = OWN_COMMANDS

    def build(self, kind: kinds.Kind) -> click.Command:
        return tune_command(kind)


@click.group(cls=TuneGroup, invoke_without_command=True, context_settings=CONTEXT)
@click.option("--resume", type=SWEEP_ID, metavar="STUDY_ID", help="Drive the study STUDY_ID again, with its settings.")
@click.option("--parallel", type=AsciiIntRange(1, MAX_TRIALS), help="Trials running at once (with --resume).")
@click.option("--wait", is_flag=True, help=WAIT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON only on stdout.")
@click.pass_context
def tune(ctx: click.Context, resume: str | None, parallel: int | None, wait: bool, as_json: bool) -> None:
    """Tune a kind: Optuna searches its options, every trial an mlpq job of one sweep (the study).

    The mlpq tune process is the study's driver: it submits trials as jobs, follows their
    per-step metrics, stops the ones the pruner gives up on (they end 'pruned') and tells
    Optuna the results. Killed or stopped, its trials go on; --resume STUDY_ID picks up.
    Run 'mlpq tune KIND --help' for a kind's options.

    \b
    Example:
      mlpq tune mnist --search lr=1e-3..0.5:log --search momentum=0..0.95 \\
          --search batch-size=50,100,200 --epochs 10 --trials 24 --pruner asha
      mlpq tune --resume 3f2a9c0d1e2b4a5f8c7d6e5f4a3b2c1d
    """
    if ctx.invoked_subcommand is None:
        if resume is None:
            raise click.UsageError("give a kind (mlpq tune KIND --search ...) or --resume STUDY_ID")
        resume_study(ctx, resume, None, parallel, wait, as_json)

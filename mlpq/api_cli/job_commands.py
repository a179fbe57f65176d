"""Commands on jobs already submitted: results, show, watch, rerun, compare, plot and cancel."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlpq.api_cli import output
from mlpq.api_cli.compare import comparison, comparison_table
from mlpq.api_cli.context import CONTEXT, client
from mlpq.api_cli.params import DEVICE, JOB_ID, KIND_NAME, SWEEP_ID, AsciiIntRange, usage_error
from mlpq.api_cli.sweep import MAX_SWEEP_JOBS
from mlpq.db.lookup import JobLookupError
from mlpq.db.status import JobStatus
from mlpq.devices import Device

if TYPE_CHECKING:
    from mlpq.api_cli.api import Client
    from mlpq.db.records import JobRecord

PLOT_SUFFIXES = (".png", ".svg", ".pdf")
FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
                      show_default=True,
                      help="json and csv give each parameter and result figure a column: param.NAME, result.NAME.")


@click.command(context_settings=CONTEXT)
@click.option("--kind", type=KIND_NAME)
@click.option("--status", type=click.Choice([s.value for s in JobStatus]))
@click.option("--device", type=DEVICE)
@click.option("--sweep", type=SWEEP_ID, help="Only the jobs of this sweep (its id or a prefix).")
@click.option("--limit", type=AsciiIntRange(1, 10_000), help="At most this many jobs.  [default: 20, a whole sweep]")
@click.option("--sort", metavar="[-]FIELD", default="-created", show_default=True,
              help="Sort by a column of --format json (created, status, duration_s, param.NAME, result.NAME, ...); "
                   "-FIELD sorts descending. The limit applies after sorting.")
@FORMAT
@click.pass_context
def results(ctx: click.Context, kind: str | None, status: str | None, device: Device | None, sweep: str | None,
            limit: int | None, sort: str, fmt: str) -> None:
    """List jobs, newest first (or as --sort says), with their headline figure.

    json and csv also give each parameter (param.NAME) and result figure (result.NAME).

    \b
    Example:
      mlpq results --kind mnist --status succeeded --format csv
      mlpq results --sweep 5d41ab
      mlpq results --kind mnist --sort -result.test_accuracy --limit 5
    """
    from mlpq.api_cli.sorting import SortFieldError

    try:
        found = client(ctx).list(kind=kind, status=status, device=str(device) if device else None, sweep=sweep,
                                  limit=limit or (MAX_SWEEP_JOBS if sweep else 20), sort=sort)
    except SortFieldError as exc:
        raise click.BadParameter(str(exc), param_hint="--sort") from None
    if fmt == "json":
        click.echo(output.to_json(output.listing(found)[0]))
    elif fmt == "csv":
        click.echo(output.to_csv(*output.listing(found)))
    elif found:
        click.echo(output.results_table(found))
    elif kind or status or device or sweep:
        click.echo("no jobs match", err=True)
    else:
        click.echo("no jobs yet: try 'mlpq submit himmelblau'", err=True)


@click.command(context_settings=CONTEXT)
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


@click.command(context_settings=CONTEXT)
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
    from mlpq.api_cli.reporting import follow_and_show  # rich only for commands that follow jobs

    api = client(ctx)
    follow_and_show(ctx, api, api.get(job_id).job, as_json)


@click.command(context_settings=CONTEXT)
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
    from pydantic import ValidationError

    from mlpq.api_cli.reporting import announce_job, follow_and_show, submit_and_announce

    api = client(ctx)

    def announce(created: list[JobRecord]) -> None:
        announce_job(created[0], wait, as_json, note=f", a rerun of {created[0].rerun_of}")

    try:
        job = submit_and_announce(lambda: [api.rerun(job_id, str(device) if device else None)], announce)[0]
    except ValidationError as exc:
        raise click.ClickException(f"job {job_id}'s parameters are not valid for this mlpq: "
                                   f"{usage_error(exc).format_message()}") from None
    if wait:
        follow_and_show(ctx, api, job, as_json)


def jobs_to_compare(api: Client, job_ids: Sequence[str], sweep_id: str | None) -> list[JobRecord]:
    """The named jobs, then a sweep's in the order submitted; each once."""
    found = [api.get(job_id).job for job_id in job_ids]
    if sweep_id:
        in_sweep = list(reversed(api.list(sweep=sweep_id, limit=MAX_SWEEP_JOBS)))
        if not in_sweep:
            raise click.ClickException(f"no jobs in a sweep {sweep_id}")
        found += in_sweep
    return list({job.id: job for job in found}.values())


@click.command(context_settings=CONTEXT)
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
    try:  # the only sure test (root passes permission checks; /proc refuses new files)
        with path.open("ab"):
            pass
    except OSError as exc:
        raise click.BadParameter(f"cannot write {path}: {exc.strerror or exc}", param_hint="--output") from exc
    return path


@click.command(context_settings=CONTEXT)
@click.argument("job_ids", metavar="JOB_ID...", nargs=-1, required=True, type=JOB_ID)
@click.option("-o", "--output", "path", type=click.Path(dir_okay=False, path_type=Path),
              help="Image file (.png, .svg or .pdf).  [default: mlpq-<id>.png in this directory]")
@click.pass_context
def plot(ctx: click.Context, job_ids: tuple[str, ...], path: Path | None) -> None:
    """Plot jobs as their kind draws them: Himmelblau paths over the function's contours, MNIST loss
    and accuracy per epoch, any other kind's metrics per step.

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
    from mlpq.api_cli.plot import draw  # matplotlib only for this command

    width, height = draw(views, target)
    click.echo(f"{target} ({width}x{height} px)")


@click.command(context_settings=CONTEXT)
@click.argument("job_ids", metavar="JOB_ID...", nargs=-1, required=True, type=JOB_ID)
@click.pass_context
def cancel(ctx: click.Context, job_ids: tuple[str, ...]) -> None:
    """Cancel jobs: a queued job never starts, a running one stops at its next step or epoch.

    Exits 1 if any job had already ended or does not exist.

    \b
    Example:
      mlpq cancel 3f2a9c 81e14a
    """
    from mlpq.db.jobs import CancelOutcome

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

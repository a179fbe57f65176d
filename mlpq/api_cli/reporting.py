"""What the CLI prints about submitted jobs, and following them until they end."""

from __future__ import annotations

from collections.abc import Sequence

import click

from mlpq.api_cli import output
from mlpq.api_cli.api import Client
from mlpq.api_cli.compare import comparison_table
from mlpq.db.records import JobRecord
from mlpq.db.status import JobStatus
from mlpq.redact import printable


def report_submitted(ctx: click.Context, api: Client, job: JobRecord, wait: bool, as_json: bool, note: str = "") -> None:
    """Print the new job; with ``wait``, follow it and show how it ended (exit 1 unless it succeeded)."""
    if as_json and not wait:
        click.echo(output.to_json(output.job_row(job)))
        return
    queued = printable(f"{job.id} queued ({job.kind} on {output.placement(job)}){note}")
    if not wait:
        click.echo(queued)
        return
    if not as_json:
        click.echo(f"{queued}; waiting (Ctrl-C stops waiting, not the job)", err=True)
    follow_and_show(ctx, api, job, as_json)


def report_sweep(ctx: click.Context, api: Client, created: Sequence[JobRecord], axes: Sequence[str], wait: bool,
                 as_json: bool) -> None:
    """Print each job of a sweep and its sweep id; with ``wait``, follow them in turn, then compare them."""
    sweep_id = created[0].sweep_id or ""
    choices = {job.id: printable(" ".join(f"{name}={output.format_value(job.params[name])}" for name in axes))
               for job in created}
    if not as_json:
        for job in created:
            click.echo(printable(f"{job.id} queued ({job.kind} on {output.placement(job)}) {choices[job.id]}"))
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


def follow_job(api: Client, job: JobRecord, quiet: bool, goes_on: str = "") -> JobRecord:
    """Follow the job until it ends; Ctrl-C stops following (exit 130) and leaves the job running."""
    from mlpq.api_cli import progress  # rich: loaded only when a job is followed

    try:
        return progress.follow(api, job, quiet=quiet)
    except KeyboardInterrupt:
        goes_on = goes_on or f"job {job.id} goes on (mlpq show {job.id[:output.SHORT_ID]})"
        click.echo(f"stopped waiting; {goes_on}", err=True)
        raise click.exceptions.Exit(130) from None


def follow_and_show(ctx: click.Context, api: Client, job: JobRecord, as_json: bool) -> None:
    """Follow the job, then show it as ``mlpq show`` does; exit 1 unless it succeeded."""
    finished = follow_job(api, job, as_json)
    view = api.get(finished.id)
    click.echo(output.to_json(output.job_detail(view)) if as_json else output.show_text(view))
    if finished.status is not JobStatus.SUCCEEDED:
        ctx.exit(1)

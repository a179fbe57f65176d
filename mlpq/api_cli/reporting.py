"""What the CLI prints about submitted jobs, and following them until they end."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import click

from mlpq import interrupts
from mlpq.api_cli import output
from mlpq.api_cli.api import Client
from mlpq.api_cli.batches import SubmitInterrupted
from mlpq.api_cli.compare import comparison_table
from mlpq.db.records import JobRecord
from mlpq.db.status import JobStatus
from mlpq.redact import printable


def submit_and_announce(submit: Callable[[], list[JobRecord]],
                        announce: Callable[[list[JobRecord]], None]) -> list[JobRecord]:
    """Submit jobs and announce them with Ctrl-C held back, so that what is printed is what happened.

    A Ctrl-C before the jobs were released withdraws them all (exit 130, "none will run"); one after lets the
    announcement finish, then exits 130 saying they run.
    """
    with interrupts.held() as hold:
        try:
            created = submit()
        except SubmitInterrupted as exc:
            click.echo(f"Error: {exc}", err=True)
            raise click.exceptions.Exit(130) from None
        announce(created)
    if hold.interrupted:
        click.echo(f"interrupted after submitting: the {len(created)} jobs run (mlpq cancel stops them)", err=True)
        raise click.exceptions.Exit(130)
    return created


def announce_job(job: JobRecord, wait: bool, as_json: bool, note: str = "") -> None:
    """Print the new job (as JSON only if it is not to be followed)."""
    if as_json:
        if not wait:
            click.echo(output.to_json(output.job_row(job)))
        return
    queued = printable(f"{job.id} queued ({job.kind} on {output.placement(job)}){note}")
    click.echo(f"{queued}; waiting (Ctrl-C stops waiting, not the job)" if wait else queued, err=wait)


def announce_sweep(created: Sequence[JobRecord], axes: Sequence[str], wait: bool, as_json: bool) -> None:
    """Print each job of a sweep and its sweep id (as JSON only if they are not to be followed)."""
    sweep_id = created[0].sweep_id or ""
    if as_json:
        if not wait:
            click.echo(output.to_json({"sweep_id": sweep_id, "jobs": [output.job_row(job) for job in created]}))
        return
    for job in created:
        click.echo(printable(f"{job.id} queued ({job.kind} on {output.placement(job)}) {choices(job, axes)}"))
    click.echo(f"sweep {sweep_id}: {len(created)} jobs (mlpq results --sweep {sweep_id[:8]}; "
               f"mlpq compare --sweep {sweep_id[:8]})")


def choices(job: JobRecord, axes: Sequence[str]) -> str:
    """The job's values of the swept parameters, as ``name=value`` pairs."""
    shown = output.shown_params(job)  # a command job's swept values are its kind's to word
    return printable(" ".join(f"{name}={output.format_value(shown.get(name))}" for name in axes))


def follow_sweep(ctx: click.Context, api: Client, created: Sequence[JobRecord], axes: Sequence[str],
                 as_json: bool) -> None:
    """Follow a sweep's jobs in turn, then compare them; exit 1 unless all succeeded."""
    sweep_id = created[0].sweep_id or ""
    ended = []
    for job in created:
        if not as_json:
            click.echo(f"waiting for {job.id[:output.SHORT_ID]} {choices(job, axes)}", err=True)
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

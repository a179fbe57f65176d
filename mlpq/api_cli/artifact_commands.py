"""Commands on what jobs keep: artifacts, download, and delete (finished jobs with all they keep)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mlpq.api_cli import output
from mlpq.api_cli.context import CONTEXT, client
from mlpq.api_cli.params import JOB_ID, SWEEP_ID


@click.command(context_settings=CONTEXT)
@click.argument("job_id", type=JOB_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (size in bytes).")
@click.pass_context
def artifacts(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """List the files a job kept: name, size, SHA-256 and the attempt that wrote it.

    \b
    Example:
      mlpq artifacts 3f2a9c
      mlpq artifacts 3f2a9c --json
    """
    kept = client(ctx).artifacts(job_id)
    if as_json:
        click.echo(output.to_json([output.artifact_row(record) for record in kept]))
    elif kept:
        rows = [{**output.artifact_row(record), "size": output.size_text(record.size)} for record in kept]
        click.echo(output.table(rows, ["name", "size", "sha256", "attempt"]))
    else:
        click.echo(f"job {job_id} kept no artifacts", err=True)


@click.command(context_settings=CONTEXT)
@click.argument("job_id", type=JOB_ID)
@click.argument("name", required=False)
@click.option("-o", "--output", "path", metavar="PATH|-",
              help="Write here (a directory: NAME in it; '-': standard output).  [default: NAME in this directory]")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_context
def download(ctx: click.Context, job_id: str, name: str | None, path: str | None, force: bool) -> None:
    """Download an artifact, verified by its SHA-256 before anything is written.

    NAME may be left out when the job kept one artifact. Exits 1 (and writes nothing) if the bytes do not
    match the SHA-256 recorded when the job kept them.

    \b
    Example:
      mlpq download 3f2a9c model.pt -o ./model.pt
      mlpq download 3f2a9c -o - | sha256sum
    """
    api = client(ctx)
    if path == "-":
        api.download_to(job_id, name, sys.stdout.buffer)
        return
    record, target = api.download(job_id, name, Path(path) if path else None, force=force)
    click.echo(f"{target} ({output.size_text(record.size)}, sha256 {record.sha256})", err=True)


@click.command(context_settings=CONTEXT)
@click.argument("job_ids", metavar="[JOB_ID]...", nargs=-1, type=JOB_ID)
@click.option("--sweep", type=SWEEP_ID, help="Delete every job of this sweep (its id or a prefix).")
@click.pass_context
def delete(ctx: click.Context, job_ids: tuple[str, ...], sweep: str | None) -> None:
    """Delete finished jobs with their metrics, attempts, logs and artifacts, in either store.

    All or nothing: if any job named is still submitting, queued or running, nothing is deleted (cancel
    it first). Prints each job deleted.

    \b
    Example:
      mlpq delete 3f2a9c 81e14a
      mlpq delete --sweep 5d41ab
    """
    if not job_ids and not sweep:
        raise click.UsageError("name the jobs to delete, or a sweep with --sweep ID")
    for job in client(ctx).delete(job_ids, sweep=sweep):
        click.echo(f"deleted {job.id} ({job.kind}, {job.status.value})")

"""``mlpq logs``: a job's log, as stored so far or followed until the job ends."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import click

from mlpq.api_cli import output
from mlpq.api_cli.context import CONTEXT, client
from mlpq.api_cli.params import JOB_ID, AsciiIntRange

if TYPE_CHECKING:
    from mlpq.api_cli.api import Client, LogView

FOLLOW_POLL_S = 0.5
PAGE = 1000
"""Lines read at a time."""


def print_lines(view: LogView, as_json: bool) -> int:
    """Print the view's lines; the id of the last one (0 if none)."""
    for line in view.lines:
        click.echo(json.dumps(output.log_row(line)) if as_json else output.log_text(line))
    return view.lines[-1].id if view.lines else 0


def read_on(api: Client, job_id: str, attempt: int | None, after_id: int, as_json: bool) -> tuple[LogView, int]:
    """Print every line stored after ``after_id``, page by page; the last view read and the last id."""
    while True:
        view = api.logs(job_id, attempt, after_id=after_id, limit=PAGE)
        after_id = print_lines(view, as_json) or after_id
        if len(view.lines) < PAGE:
            return view, after_id


@click.command(context_settings=CONTEXT)
@click.argument("job_id", type=JOB_ID)
@click.option("--attempt", type=AsciiIntRange(1, 1_000_000), help="Only this attempt's lines.")
@click.option("--follow", "-f", is_flag=True, help="Print new lines as they come until the job ends.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line: id, attempt, at, source, level, "
                                                      "line.")
@click.pass_context
def logs(ctx: click.Context, job_id: str, attempt: int | None, follow: bool, as_json: bool) -> None:
    """Print a job's log: what it logged (Python logging, warnings) and what its worker said about it.

    Each line shows the time, the attempt (#1, #2, ...), the source (job, stdout, stderr, worker) and the
    level unless INFO. --follow ends when the job does; Ctrl-C stops following, not the job (exit 130).

    \b
    Example:
      mlpq logs 3f2a9c
      mlpq logs 3f2a9c --follow
      mlpq logs 3f2a9c --attempt 2 --json
    """
    api = client(ctx)
    try:
        view, after_id = read_on(api, job_id, attempt, 0, as_json)
        job_id = view.job.id
        while follow and not view.job.status.terminal:
            time.sleep(FOLLOW_POLL_S)
            view, after_id = read_on(api, job_id, attempt, after_id, as_json)
    except KeyboardInterrupt:
        click.echo(f"stopped following; job {job_id} goes on (mlpq show {job_id[:output.SHORT_ID]})", err=True)
        raise click.exceptions.Exit(130) from None
    if after_id == 0 and not as_json:
        click.echo(f"job {view.job.id} has no log lines{' of that attempt' if attempt else ''} "
                   f"({view.job.status.value})", err=True)

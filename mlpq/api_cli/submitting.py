"""Submitting what ``mlpq submit KIND`` was given: one job, or a sweep of them."""

from __future__ import annotations

from typing import Any

import click
from pydantic import ValidationError

from mlpq.api_cli import sweep
from mlpq.api_cli.api import JobRequest
from mlpq.api_cli.context import client
from mlpq.api_cli.params import usage_error
from mlpq.api_cli.reporting import report_submitted, report_sweep
from mlpq.api_cli.spec_options import given, option_names
from mlpq.devices import Device
from mlpq.kinds import Kind


def run_submit(ctx: click.Context, kind: Kind, fields: dict[str, Any], device: Device, pool: str | None,
               timeout: int | None, wait: bool, as_json: bool) -> None:
    """Submit one job, or one per combination of the comma lists (a sweep)."""
    params, options = given(fields), option_names(kind.spec)
    combinations = sweep.grid(params, options)
    sweep_id = sweep.new_sweep_id() if len(combinations) > 1 else None
    api = client(ctx)
    try:
        created = api.submit_many([JobRequest(kind.name, combination, str(device), timeout, pool=pool)
                                   for combination in combinations], sweep_id=sweep_id)
    except ValidationError as exc:
        raise usage_error(exc, options) from None
    if sweep_id is None:
        report_submitted(ctx, api, created[0], wait, as_json)
    else:
        report_sweep(ctx, api, created, sweep.swept(params), wait, as_json)

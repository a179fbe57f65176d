"""Submitting what ``mlpq submit KIND`` was given: one job, or a sweep of them."""

from __future__ import annotations

from typing import Any

import click
from pydantic import ValidationError

from mlpq.api_cli import sweep
from mlpq.api_cli.api import JobRequest
from mlpq.api_cli.context import client
from mlpq.api_cli.params import usage_error
from mlpq.api_cli.reporting import announce_job, announce_sweep, follow_and_show, follow_sweep, submit_and_announce
from mlpq.api_cli.spec_options import given, option_names
from mlpq.db.records import JobRecord
from mlpq.devices import Device
from mlpq.kinds import Kind


def run_submit(ctx: click.Context, kind: Kind, fields: dict[str, Any], device: Device, pool: str | None,
               timeout: int | None, wait: bool, as_json: bool) -> None:
    """Submit one job, or one per combination of the comma lists (a sweep)."""
    params, options = given(fields), option_names(kind.spec)
    combinations = sweep.grid(params, options)
    sweep_id = sweep.new_sweep_id() if len(combinations) > 1 else None
    api = client(ctx)
    requests = [JobRequest(kind.name, combination, str(device), timeout, pool=pool) for combination in combinations]
    axes = sweep.swept(params)

    def announce(created: list[JobRecord]) -> None:
        if sweep_id is None:
            announce_job(created[0], wait, as_json)
        else:
            announce_sweep(created, axes, wait, as_json)

    try:
        created = submit_and_announce(lambda: api.submit_many(requests, sweep_id=sweep_id), announce)
    except ValidationError as exc:
        raise usage_error(exc, options) from None
    if wait:
        if sweep_id is None:
            follow_and_show(ctx, api, created[0], as_json)
        else:
            follow_sweep(ctx, api, created, axes, as_json)

"""click parameter types and the translation of validation errors into one-line usage errors."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from mlpq.db.jobs import is_job_id
from mlpq.db.session import normalise_url
from mlpq.locations import LocationError, check_broker_url, check_data_dir
from mlpq.redact import shown
from mlpq.worker.device import Device, DeviceError, parse_device

FIELD_OPTIONS = {"starts": "--start"}


class DeviceType(click.ParamType):
    """``cpu``, ``cuda`` or ``cuda:N``."""

    name = "device"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Device:
        if isinstance(value, Device):
            return value
        try:
            return parse_device(str(value))
        except DeviceError as exc:
            self.fail(str(exc), param, ctx)


class PointType(click.ParamType):
    """``X,Y``: two finite numbers."""

    name = "x,y"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[float, float]:
        if isinstance(value, tuple):
            return value
        parts = str(value).split(",")
        try:
            x, y = (float(part) for part in parts)
        except ValueError:
            self.fail(f"expected two numbers as X,Y (like -4,0), got {shown(value)}", param, ctx)
        if not (math.isfinite(x) and math.isfinite(y)):
            self.fail(f"coordinates must be finite numbers, got {shown(value)}", param, ctx)
        return (x, y)


class DataDirType(click.ParamType):
    """An absolute directory outside the system directories that exists and is writable, or can be created."""

    name = "dir"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            text = check_data_dir(str(value))
        except LocationError as exc:
            self.fail(str(exc), param, ctx)
        path = Path(text)
        existing = next(p for p in (path, *path.parents) if p.exists())
        if existing == path and not path.is_dir():
            self.fail(f"{shown(text)} is not a directory", param, ctx)
        if not os.access(existing, os.W_OK | os.X_OK):
            self.fail(f"{shown(str(existing))} is not writable", param, ctx)
        return text


class URLType(click.ParamType):
    """A broker or database URL, checked by ``check``; the error never shows its password."""

    name = "url"

    def __init__(self, check: Callable[[str], str]) -> None:
        self.check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return self.check(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class JobIdType(click.ParamType):
    """A job id or a unique prefix of one: 4 to 32 hex digits."""

    name = "job_id"
    noun = "job id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip().lower()
        if not is_job_id(text):
            self.fail(f"{shown(value)} is not a {self.noun} (4 to 32 hex digits)", param, ctx)
        return text


class SweepIdType(JobIdType):
    """A sweep id or a prefix of one: 4 to 32 hex digits."""

    name = "sweep_id"
    noun = "sweep id"


DEVICE = DeviceType()
POINT = PointType()
DATA_DIR = DataDirType()
BROKER_URL = URLType(check_broker_url)
DATABASE_URL = URLType(normalise_url)
JOB_ID = JobIdType()
SWEEP_ID = SweepIdType()


def option_name(field: str) -> str:
    return FIELD_OPTIONS.get(field, "--" + field.replace("_", "-"))


def usage_error(exc: ValidationError) -> click.UsageError:
    """The first problem of a spec validation as a one-line usage error naming the option."""
    error = exc.errors()[0]
    fields = [str(part) for part in error["loc"] if isinstance(part, str)]
    message = error["msg"][0].lower() + error["msg"][1:]
    where = f"invalid value for {option_name(fields[0])}: " if fields else "invalid parameters: "
    if "input" in error and fields:
        message += f" (got {shown(error['input'])})"
    return click.UsageError(where + message.removeprefix("value error, "))

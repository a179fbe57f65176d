"""click parameter types and the translation of validation errors into one-line usage errors."""

from __future__ import annotations

import math
import re
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import click

from mlpq.db.lookup import is_job_id
from mlpq.devices import DeviceError, parse_device, parse_pool
from mlpq.locations import LocationError, check_broker_url, check_data_dir, check_hostname, normalise_database_url
from mlpq.redact import shown

if TYPE_CHECKING:
    from pydantic import ValidationError

INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,30}")
DECIMAL_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?|[+-]?(inf|infinity|nan)", re.ASCII | re.I)
DNS_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DNS_NAME_PATTERN = re.compile(rf"(?=.{{1,253}}\Z){DNS_LABEL}(\.{DNS_LABEL})*")


def default_hostname() -> str:
    """The host name a worker reports and ``mlpq workers --self`` looks for: ``MLPQ_HOSTNAME`` or the system's.

    A click default: it reads the settings the root command stored on the context.
    """
    return click.get_current_context().find_root().obj.hostname or socket.gethostname()


class ParsedType(click.ParamType):
    """A string checked by one of ``mlpq.devices``' parsers, which raise ``DeviceError``."""

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name, self.parse = name, parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except DeviceError as exc:
            self.fail(str(exc), param, ctx)


class AsciiNumber(click.ParamType):
    """Mixed into click's number types to take ASCII digits only: ``int()`` and ``float()`` also take other
    scripts' digits (``５``, ``٣``) and ``_`` between digits, and ``int("²")`` fails with a ``ValueError``."""

    pattern: re.Pattern[str]
    noun: str

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and self.pattern.fullmatch(value.strip()) is None:
            self.fail(f"{shown(value)} is not {self.noun}", param, ctx)
        return super().convert(value, param, ctx)


class AsciiInt(AsciiNumber, click.types.IntParamType):
    """click's ``INT`` in ASCII digits (at most 30 of them)."""

    pattern, noun = INTEGER_TEXT, "a whole number (at most 30 digits 0-9)"


class AsciiIntRange(AsciiNumber, click.IntRange):
    """click's ``IntRange`` in ASCII digits (at most 30 of them)."""

    pattern, noun = INTEGER_TEXT, "a whole number (at most 30 digits 0-9)"


class AsciiFloat(AsciiNumber, click.types.FloatParamType):
    """click's ``FLOAT`` in ASCII digits."""

    pattern, noun = DECIMAL_TEXT, "a number (digits 0-9)"


class AsciiFloatRange(AsciiNumber, click.FloatRange):
    """click's ``FloatRange`` in ASCII digits."""

    pattern, noun = DECIMAL_TEXT, "a number (digits 0-9)"


class HostnameType(click.ParamType):
    """A host name for a worker's node name: letters, digits, ``.``, ``-`` and ``_``."""

    name = "hostname"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return check_hostname(str(value))
        except LocationError as exc:
            self.fail(str(exc), param, ctx)


class DnsNameType(click.ParamType):
    """A DNS name, like ``gpu-box.example.org``: dot-separated labels of letters, digits and ``-``; lower-cased."""

    name = "name"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).lower()
        if DNS_NAME_PATTERN.fullmatch(text) is None:
            self.fail(f"invalid host name {shown(value)}: use a DNS name like gpu-box.example.org", param, ctx)
        return text


class PointType(click.ParamType):
    """``X,Y``: two finite numbers."""

    name = "x,y"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[float, float]:
        if isinstance(value, tuple):
            return value
        parts = str(value).split(",")
        try:
            if not all(DECIMAL_TEXT.fullmatch(part.strip()) for part in parts):
                raise ValueError("not numbers in the digits 0-9")
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


class KindNameType(click.ParamType):
    """The name of an installed job kind (looked up when the option is used, not when the CLI starts)."""

    name = "kind"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from mlpq import kinds

        if str(value) not in kinds.names():
            self.fail(f"{value!r} is not an installed kind: choose from {', '.join(kinds.names())}", param, ctx)
        return str(value)


DEVICE = ParsedType("device", parse_device)
"""``cpu``, ``cuda`` or ``cuda:N``."""
POOL = ParsedType("pool", parse_pool)
"""A pool name: 1 to 32 lower-case letters, digits, ``-`` or ``_``."""
INT = AsciiInt()
FLOAT = AsciiFloat()
HOSTNAME = HostnameType()
DNS_NAME = DnsNameType()
KIND_NAME = KindNameType()
POINT = PointType()
DATA_DIR = DataDirType()
BROKER_URL = URLType(check_broker_url)
DATABASE_URL = URLType(normalise_database_url)
JOB_ID = JobIdType()
SWEEP_ID = SweepIdType()


def option_name(field: str, options: Mapping[str, str]) -> str:
    """The option that sets a spec field: from ``options``, else ``--field-name``."""
    return options.get(field, "--" + field.replace("_", "-"))


def usage_error(exc: ValidationError, options: Mapping[str, str] = MappingProxyType({})) -> click.UsageError:
    """The first problem of a spec validation as a one-line usage error naming the option (see ``option_name``)."""
    error = exc.errors()[0]
    fields = [str(part) for part in error["loc"] if isinstance(part, str)]
    message = error["msg"][0].lower() + error["msg"][1:]
    where = f"invalid value for {option_name(fields[0], options)}: " if fields else "invalid parameters: "
    if "input" in error and fields:
        message += f" (got {shown(error['input'])})"
    return click.UsageError(where + message.removeprefix("value error, "))

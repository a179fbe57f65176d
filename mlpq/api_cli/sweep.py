"""Sweeps: comma lists on ``submit`` options (``--lr 0.01,0.1 --batch-size 100,200``) expand into their grid."""

from __future__ import annotations

import itertools
import math
import secrets
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import click

from mlpq.api_cli.params import option_name
from mlpq.kinds import SEED_BOUND
from mlpq.redact import shown

MAX_SWEEP_JOBS = 1000


class Axis(tuple):  # type: ignore[type-arg]
    """The values one option takes across a sweep; a single value is an axis of one."""


class ListOf(click.ParamType):
    """``A,B,C``: values of ``item``'s type, each checked as ``item`` checks it; repeats are dropped."""

    def __init__(self, item: click.ParamType) -> None:
        self.item = item
        self.name = f"{item.name} list"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        plain = {"integer range": "INTEGER", "float range": "FLOAT"}.get(self.item.name)
        return f"{plain or self.item.get_metavar(param, ctx) or self.item.name.upper()}[,...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Axis:
        if isinstance(value, Axis):
            return value
        parts = [part.strip() for part in str(value).split(",")]
        if "" in parts:
            self.fail(f"empty element in {shown(value)}: give values separated by commas, like 0.01,0.1", param, ctx)
        return Axis(dict.fromkeys(self.item.convert(part, param, ctx) for part in parts))


def new_sweep_id() -> str:
    return uuid.uuid4().hex


def swept(params: Mapping[str, Any]) -> list[str]:
    """The parameters that take more than one value."""
    return [name for name, value in params.items() if isinstance(value, Axis) and len(value) > 1]


def grid(params: Mapping[str, Any], options: Mapping[str, str] = MappingProxyType({})) -> list[dict[str, Any]]:
    """Every combination of the axes in ``params`` (the cartesian product), other values as they are.

    The jobs of a sweep given no seed share one drawn seed, so they differ only
    in the swept values. Raises a usage error, naming the fields by their
    ``options``, past ``MAX_SWEEP_JOBS`` combinations.
    """
    axes = {name: value for name, value in params.items() if isinstance(value, Axis)}
    size = math.prod(len(values) for values in axes.values())
    if size > MAX_SWEEP_JOBS:
        options_text = ", ".join(option_name(name, options) for name in swept(params))
        raise click.UsageError(f"the sweep over {options_text} has {size:,} jobs; at most {MAX_SWEEP_JOBS:,} at once")
    shared = {"seed": secrets.randbelow(SEED_BOUND)} if size > 1 and params.get("seed") is None else {}
    return [{**params, **shared, **dict(zip(axes, values))} for values in itertools.product(*axes.values())]

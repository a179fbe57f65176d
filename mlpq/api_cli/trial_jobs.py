"""A trial's job parameters: the study's fixed values and the trial's searched ones, or for a ``command`` job its
argument vector with each ``{name}`` filled in. No optuna here: ``mlpq tune`` checks its input with these first."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mlpq.api_cli.command_submit import fill
from mlpq.api_cli.search import Dimension
from mlpq.devices import COMMAND_KIND

WHOLE_NUMBER = re.compile(r"\s*[+-]?[0-9]+\s*")


def argument_text(value: Any) -> str:
    """A searched value as a command's argument: a float as Python reads it back exactly
    (``0.0031622776601683794``)."""
    return repr(value) if isinstance(value, float) else str(value)


def job_params(kind: str, fixed: Mapping[str, Any], chosen: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of the job of a trial whose searched values are ``chosen``; a command's ``values`` keep
    what its arguments were filled with, as ``mlpq submit command --param`` does."""
    if kind != COMMAND_KIND:
        return {**fixed, **chosen}
    values = {name: argument_text(value) for name, value in chosen.items()}
    return {**fixed, "argv": fill(fixed["argv"], values), "values": values}


def trial_part(kind: str, dimensions: Sequence[Dimension], params: Mapping[str, Any]) -> dict[str, Any]:
    """What sets one trial's job apart from the others': its searched fields, or a command's filled-in values."""
    if kind == COMMAND_KIND:
        return {"values": params.get("values")}
    return {dimension.name: params.get(dimension.name) for dimension in dimensions}


def searched_values(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A job's parameters by the names a search gives them: a command's filled-in values, read back as numbers
    where they are numbers (for the search panels' axes)."""
    if kind != COMMAND_KIND:
        return dict(params)
    return {name: number_or_text(text) for name, text in (params.get("values") or {}).items()}


def number_or_text(text: str) -> Any:
    if WHOLE_NUMBER.fullmatch(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text

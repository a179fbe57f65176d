"""What ``mlpq tune`` searches and optimises: ``--search`` dimensions and the ``--objective``, checked against
the kind's spec (its ``Field`` bounds and ``Literal`` choices) and its result fields. No optuna here."""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import click

from mlpq.api_cli.params import FLOAT, INT
from mlpq.api_cli.spec_options import bounds, option_names, scalar_type, unwrap
from mlpq.kinds import Kind
from mlpq.redact import shown

Direction = Literal["min", "max"]


@dataclass(frozen=True)
class Range:
    """``NAME=LOW..HIGH[:log]``: a number between two bounds, on a log scale with ``:log``."""

    name: str
    low: float
    high: float
    log: bool
    integer: bool

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "low": self.low, "high": self.high, "log": self.log, "integer": self.integer}


@dataclass(frozen=True)
class Choices:
    """``NAME=A,B,C``: one of the listed values."""

    name: str
    values: tuple[Any, ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values)}


Dimension = Range | Choices


def dimension_of(stored: Mapping[str, Any]) -> Dimension:
    """A dimension from its ``as_json``."""
    if "values" in stored:
        return Choices(stored["name"], tuple(stored["values"]))
    return Range(stored["name"], stored["low"], stored["high"], stored["log"], stored["integer"])


@dataclass(frozen=True)
class Objective:
    field: str
    direction: Direction

    def __str__(self) -> str:
        return f"{self.field} ({self.direction})"


def field_named(kind: Kind, name: str) -> str:
    """The spec field called ``name``, given as the field (``batch_size``) or its option (``batch-size``)."""
    by_option = {option.removeprefix("--"): field for field, option in option_names(kind.spec).items()}
    found = name if name in kind.spec.model_fields else by_option.get(name)
    if found is None:
        raise click.UsageError(f"--search {shown(name)}: {kind.name} has no such field "
                               f"(its numeric and choice fields: {', '.join(searchable(kind))})")
    return found


def searchable(kind: Kind) -> list[str]:
    """The spec fields a search may range over: numbers and ``Literal`` choices."""
    def fits(annotation: Any) -> bool:
        return annotation in (int, float) or typing.get_origin(annotation) is Literal

    return [name for name, field in kind.spec.model_fields.items() if fits(unwrap(field.annotation)[0])]


def parse_dimension(text: str, kind: Kind) -> Dimension:
    """One ``--search`` value; a usage error naming the field for anything the spec would not take."""
    name, equals, values = text.partition("=")
    if not equals or not name.strip() or not values.strip():
        raise click.UsageError(f"--search {shown(text)}: give NAME=LOW..HIGH[:log] or NAME=A,B,C")
    field = field_named(kind, name.strip())
    annotation, constraints = unwrap(kind.spec.model_fields[field].annotation)
    constraints += kind.spec.model_fields[field].metadata
    if ".." in values:
        return parse_range(field, values.strip(), annotation, constraints)
    return parse_choices(field, values, annotation, constraints)


def parse_range(field: str, text: str, annotation: Any, constraints: list[Any]) -> Range:
    if annotation not in (int, float) or typing.get_origin(annotation) is Literal:
        raise click.UsageError(f"--search {field}: a range needs a numeric field; give its choices as A,B,C")
    span, colon, scale = text.partition(":")
    if colon and scale != "log":
        raise click.UsageError(f"--search {field}: unknown scale {shown(scale)} (only :log)")
    low_text, _, high_text = span.partition("..")
    number = INT if annotation is int else FLOAT
    try:
        low, high = (number.convert(part.strip(), None, None) for part in (low_text, high_text))
    except click.BadParameter as exc:
        raise click.UsageError(f"--search {field}: {exc.message}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise click.UsageError(f"--search {field}: the bounds must be finite")
    if low >= high:
        raise click.UsageError(f"--search {field}: LOW must be below HIGH, not {low:g}..{high:g}")
    if colon and low <= 0:
        raise click.UsageError(f"--search {field}: a :log range needs LOW > 0, not {low:g}")
    check_bounds(field, low, high, bounds(constraints))
    return Range(field, low, high, bool(colon), annotation is int)


def check_bounds(field: str, low: float, high: float, limits: Mapping[str, Any]) -> None:
    """A usage error where ``low..high`` reaches past the spec's own bounds for ``field``."""
    if "min" in limits and (low < limits["min"] or (limits.get("min_open") and low == limits["min"])):
        sign = ">" if limits.get("min_open") else ">="
        raise click.UsageError(f"--search {field}: {low:g} is out of the field's range ({field} {sign} {limits['min']:g})")
    if "max" in limits and (high > limits["max"] or (limits.get("max_open") and high == limits["max"])):
        sign = "<" if limits.get("max_open") else "<="
        raise click.UsageError(f"--search {field}: {high:g} is out of the field's range ({field} {sign} {limits['max']:g})")


def parse_choices(field: str, text: str, annotation: Any, constraints: list[Any]) -> Choices:
    numeric = annotation in (int, float)
    if not numeric and typing.get_origin(annotation) is not Literal:
        raise click.UsageError(f"--search {field}: only numeric and choice fields can be searched")
    parts = [part.strip() for part in text.split(",")]
    if "" in parts:
        raise click.UsageError(f"--search {field}: empty choice in {shown(text)}")
    item = scalar_type(annotation, constraints)
    try:
        values = tuple(dict.fromkeys(item.convert(part, None, None) for part in parts))
    except click.BadParameter as exc:
        raise click.UsageError(f"--search {field}: {exc.message}") from None
    if typing.get_origin(annotation) is Literal:  # click's Choice gives text: back to the Literal's own values
        own = {str(value): value for value in typing.get_args(annotation)}
        values = tuple(own[value] for value in values)
    return Choices(field, values)


def parse_search(texts: Sequence[str], kind: Kind, fixed: Mapping[str, Any]) -> list[Dimension]:
    """Every ``--search``: at least one, each field once, none also given a fixed value."""
    if not texts:
        raise click.UsageError("give at least one --search NAME=LOW..HIGH[:log] or NAME=A,B,C")
    dimensions = [parse_dimension(text, kind) for text in texts]
    names = [dimension.name for dimension in dimensions]
    for name in names:
        if names.count(name) > 1:
            raise click.UsageError(f"--search {name}: given more than once")
        if name in fixed:
            raise click.UsageError(f"--search {name}: also given a fixed value; give one or the other")
    return dimensions


def parse_objective(text: str | None, kind: Kind) -> Objective:
    """``FIELD[:min|max]``, by default the kind's ``best``; the field must be among the kind's result fields
    where it declares them."""
    if text is None:
        if kind.best is None:
            raise click.UsageError(f"{kind.name} declares no best result: give --objective FIELD:min or FIELD:max")
        return Objective(*kind.best)
    field, colon, direction = text.partition(":")
    if colon and direction not in ("min", "max"):
        raise click.UsageError(f"--objective {shown(text)}: the direction is min or max")
    if kind.result_fields and field not in kind.result_fields:
        raise click.UsageError(f"--objective {shown(field)}: {kind.name}'s results have "
                               f"{', '.join(kind.result_fields)}")
    if not field:
        raise click.UsageError("--objective: give FIELD[:min|max]")
    if not colon:
        if kind.best is not None and kind.best[0] == field:
            return Objective(field, kind.best[1])
        raise click.UsageError(f"--objective {shown(field)}: say whether to minimise or maximise it ({field}:min "
                               f"or {field}:max)")
    return Objective(field, typing.cast(Direction, direction))

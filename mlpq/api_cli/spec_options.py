"""click options generated from a kind's pydantic spec: names, types, bounds, choices, defaults and help.

An ``int`` or ``float`` field becomes a ranged option and a ``Literal`` a choice; both take comma
lists (a sweep). A ``bool`` becomes ``--name/--no-name``, a list a repeatable option, a ``str`` a
plain one. A field's ``json_schema_extra`` may set ``option`` (its option's name), ``cli_type``
(``directory``: a writable directory, resolved here) and ``default_help`` (the default as words); ``cli``
false keeps a field off the command line (the submit path fills it in).
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from types import NoneType, UnionType
from typing import Any, Literal

import annotated_types
import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from mlpq.api_cli.params import DATA_DIR, FLOAT, INT, POINT, AsciiFloatRange, AsciiIntRange
from mlpq.api_cli.sweep import ListOf

CLI_TYPES = {"directory": DATA_DIR}
SEED_FIELD = "seed"
DRAWN_SEED_HELP = "drawn and stored when absent"
"""What a seed field's help says instead of its default: ``Client.validate`` draws any absent ``seed``."""


def option_names(spec: type[BaseModel]) -> dict[str, str]:
    """Each field's option, like ``{"batch_size": "--batch-size", "starts": "--start"}``."""
    return {name: "--" + str(extra(field).get("option", name)).replace("_", "-")
            for name, field in spec.model_fields.items() if extra(field).get("cli", True)}


def extra(field: FieldInfo) -> dict[str, Any]:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """The type under ``Annotated`` and ``X | None``, and the constraints found on the way."""
    found: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *metadata = typing.get_args(annotation)
            for item in metadata:
                found += item.metadata if isinstance(item, FieldInfo) else [item]
        elif origin in (typing.Union, UnionType):
            options = [arg for arg in typing.get_args(annotation) if arg is not NoneType]
            if len(options) != 1:
                raise TypeError(f"cannot make an option of {annotation}")
            annotation = options[0]
        else:
            return annotation, found


def bounds(constraints: list[Any]) -> dict[str, Any]:
    """click range arguments from annotated-types constraints."""
    limits: dict[str, Any] = {}
    for item in constraints:
        if isinstance(item, annotated_types.Ge):
            limits.update(min=item.ge)
        elif isinstance(item, annotated_types.Gt):
            limits.update(min=item.gt, min_open=True)
        elif isinstance(item, annotated_types.Le):
            limits.update(max=item.le)
        elif isinstance(item, annotated_types.Lt):
            limits.update(max=item.lt, max_open=True)
    return limits


def scalar_type(annotation: Any, constraints: list[Any]) -> click.ParamType:
    """The click type of one value, checked as the spec checks it."""
    if typing.get_origin(annotation) is Literal:
        return click.Choice([str(value) for value in typing.get_args(annotation)])
    if annotation is int:
        limits = bounds(constraints)
        return AsciiIntRange(**limits) if limits else INT
    if annotation is float:
        limits = bounds(constraints)
        return AsciiFloatRange(**limits) if limits else FLOAT
    if typing.get_origin(annotation) is tuple and [unwrap(arg)[0] for arg in typing.get_args(annotation)] == [float] * 2:
        return POINT
    if annotation is str:
        return click.STRING
    raise TypeError(f"cannot make an option of {annotation}")


def number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def range_text(limits: dict[str, Any]) -> str:
    """``  [2<=x<=64]``, ``  [0<x<=10]``, or nothing for an unbounded value."""
    if not limits:
        return ""
    low = f"{number(limits['min'])}{'<' if limits.get('min_open') else '<='}" if "min" in limits else ""
    high = f"{'<' if limits.get('max_open') else '<='}{number(limits['max'])}" if "max" in limits else ""
    return f"  [{low}x{high}]"


def default_text(name: str, field: FieldInfo) -> str | None:
    if name == SEED_FIELD:
        return DRAWN_SEED_HELP
    if "default_help" in extra(field):
        return str(extra(field)["default_help"])
    default = field.get_default(call_default_factory=True)
    if default is None or default is PydanticUndefined:
        return None
    if isinstance(default, list):
        return " ".join(",".join(f"{v:g}" for v in item) if isinstance(item, tuple) else str(item) for item in default)
    if isinstance(default, bool):
        return None
    return number(default) if isinstance(default, int | float) else str(default)


def field_option(name: str, field: FieldInfo, option: str) -> click.Option:
    """The option for one spec field. Its default is ``None`` (not given): the spec's own default applies."""
    annotation, constraints = unwrap(field.annotation)
    constraints += field.metadata
    shown = default_text(name, field)
    help_text = (field.description or "") + (f"  [default: {shown}]" if shown else "")
    if annotation is bool:
        flag = option.removeprefix("--")
        default = f"  [default: --{'' if field.default else 'no-'}{flag}]"
        return click.Option([f"--{flag}/--no-{flag}", name], default=None, help=help_text + default)
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return click.Option([option, name], type=scalar_type(*unwrap(item)), multiple=True, help=help_text)
    if "cli_type" in extra(field):
        return click.Option([option, name], type=CLI_TYPES[extra(field)["cli_type"]], help=help_text)
    kind = scalar_type(annotation, constraints)
    if annotation is str:
        return click.Option([option, name], type=kind, help=help_text)
    limits = range_text(bounds(constraints)) if annotation in (int, float) else ""
    return click.Option([option, name], type=ListOf(kind), help=help_text + limits)


def spec_options(spec: type[BaseModel]) -> Iterator[click.Option]:
    """One option per field of ``spec``, in the order the fields are declared (base classes first)."""
    names = option_names(spec)
    for name, field in spec.model_fields.items():
        if name in names:
            yield field_option(name, field, names[name])


def given(values: dict[str, Any]) -> dict[str, Any]:
    """The options the user gave, as spec parameters: unset ones dropped, repeated ones as lists."""
    return {name: list(value) if type(value) is tuple else value  # an Axis (a sweep) stays as it is
            for name, value in values.items() if value is not None and value != ()}

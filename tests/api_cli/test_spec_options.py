"""``mlpq submit KIND`` options come from the kind's spec: names, bounds, choices, defaults, help and sweeps."""

from __future__ import annotations

import ast
from typing import Annotated, Literal

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict, Field

from mlpq.api_cli.cli import cli
from mlpq.api_cli.spec_options import given, option_names, spec_options


class ToySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate: Annotated[float, Field(gt=0, le=2)] = Field(default=0.5, description="How fast.")
    count: Annotated[int, Field(ge=1, lt=10)] | None = Field(default=None, description="How many.")
    mode: Literal["fast", "slow"] = Field(default="fast", description="Which way.")
    verbose: bool = Field(default=False, description="Say more.")
    tags: list[str] = Field(default=[], description="A tag.", json_schema_extra={"option": "tag"})
    label: str | None = None


def command() -> click.Command:
    @click.command(params=list(spec_options(ToySpec)))
    def toy(**values: object) -> None:
        params = given(values)
        assert all(type(value) is not tuple for value in params.values())  # sweeps are Axis, lists are lists
        click.echo(repr(params))

    return toy


def test_names_types_bounds_choices_defaults_and_help_come_from_the_spec() -> None:
    assert option_names(ToySpec) == {"rate": "--rate", "count": "--count", "mode": "--mode",
                                     "verbose": "--verbose", "tags": "--tag", "label": "--label"}
    help_text = " ".join(CliRunner().invoke(command(), ["--help"]).output.split())
    for expected in ("--rate FLOAT[,...] How fast. [default: 0.5] [0<x<=2]", "--count INTEGER[,...] How many. [1<=x<10]",
                     "--mode [fast|slow][,...] Which way. [default: fast]", "--verbose / --no-verbose Say more.",
                     "--tag TEXT A tag.", "--label TEXT"):
        assert expected in help_text


def test_only_given_options_reach_the_spec_and_comma_lists_sweep() -> None:
    runner = CliRunner()
    assert runner.invoke(command(), []).output.strip() == "{}"
    result = runner.invoke(command(), ["--rate", "0.1,0.2", "--mode", "slow", "--tag", "a", "--tag", "b", "--verbose"])
    assert ast.literal_eval(result.output) == {"rate": (0.1, 0.2), "mode": ("slow",), "verbose": True,
                                               "tags": ["a", "b"]}


@pytest.mark.parametrize(("args", "message"), [
    (["--rate", "0"], "0<x<=2"), (["--rate", "3"], "0<x<=2"), (["--count", "10"], "1<=x<10"),
    (["--mode", "medium"], "'medium' is not one of 'fast', 'slow'"), (["--rate", "0.1,"], "empty element"),
])
def test_out_of_bounds_values_are_refused_by_the_option(args: list[str], message: str) -> None:
    result = CliRunner().invoke(command(), args)
    assert result.exit_code == 2 and message in result.output


def test_every_field_of_each_kind_has_an_option_and_a_description() -> None:
    from mlpq import kinds

    for name in kinds.names():
        kind = kinds.get(name)
        assert all(field.description for field in kind.spec.model_fields.values()), name
        result = CliRunner().invoke(cli, ["submit", name, "--help"])
        assert result.exit_code == 0
        assert all(option in result.output for option in option_names(kind.spec).values())


class SeededSpec(BaseModel):
    """A kind's own seed field, as an installed package declares it (not through ``JobSpec``)."""

    seed: Annotated[int, Field(ge=0, lt=2**32)] = Field(default=0, description="Random seed.")


def test_a_seed_fields_help_says_it_is_drawn_not_its_default() -> None:
    @click.command(params=list(spec_options(SeededSpec)))
    def seeded(**values: object) -> None:
        pass

    help_text = " ".join(CliRunner().invoke(seeded, ["--help"]).output.split())
    assert "--seed INTEGER[,...] Random seed. [default: drawn and stored when absent] [0<=x<4294967296]" in help_text
    assert "[default: 0]" not in help_text

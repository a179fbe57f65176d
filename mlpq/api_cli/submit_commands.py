"""``mlpq submit KIND``: one command per installed kind, generated from its spec, sharing the device,
pool, timeout and output options."""

from __future__ import annotations

from typing import Any

import click

from mlpq import kinds
from mlpq.api_cli.context import CONTEXT
from mlpq.api_cli.params import DEVICE, POOL, AsciiIntRange
from mlpq.devices import Device
from mlpq.kinds import MAX_TIMEOUT_S, Kind

OWN_COMMANDS = {"command": "mlpq.api_cli.command_submit:submit_command"}
"""Kinds whose ``submit`` command is written by hand (the command kind's program after ``--``), not generated."""


def common_options(kind: Kind) -> list[click.Option]:
    """The options every ``submit`` command shares."""
    return [
        click.Option(["--device"], type=DEVICE, default="cpu", show_default=True, help="cpu, cuda (any GPU) or cuda:N."),
        click.Option(["--pool"], type=POOL,
                     help="Run only on workers started with this --pool.  [default: workers without a pool]"),
        click.Option(["--timeout"], type=AsciiIntRange(1, MAX_TIMEOUT_S), metavar="SECONDS",
                     help=f"Fail the job if it runs longer.  [default: {kind.default_timeout_s}]"),
        click.Option(["--wait"], is_flag=True, help="Block until the job ends, show its result; exit 1 if it failed."),
        click.Option(["--json", "as_json"], is_flag=True, help="Print machine-readable JSON only on stdout."),
    ]


def submit_command(kind: Kind) -> click.Command:
    """``mlpq submit NAME``: an option per spec field, then the common ones."""
    from mlpq.api_cli.spec_options import spec_options

    def callback(device: Device, pool: str | None, timeout: int | None, wait: bool, as_json: bool,
                 **fields: Any) -> None:
        from mlpq.api_cli.submitting import run_submit

        run_submit(click.get_current_context(), kind, fields, device, pool, timeout, wait, as_json)

    return click.Command(kind.name, callback=callback, params=[*spec_options(kind.spec), *common_options(kind)],
                         help=kind.help, context_settings=CONTEXT)


class KindGroup(click.Group):
    """One command per installed kind, built only when it is asked for: a kind's own (``own_commands``: the
    ``module:function`` that builds it) or the generic one (``build``)."""

    own_commands: dict[str, str] = {}

    def build(self, kind: Kind) -> click.Command:
        raise NotImplementedError

    def list_commands(self, ctx: click.Context) -> list[str]:
        return kinds.names()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        kind = kinds.find(cmd_name)
        if kind is None:
            return None
        if kind.name in self.own_commands:
            return kinds.load_object(self.own_commands[kind.name])(kind)
        return self.build(kind)


class SubmitGroup(KindGroup):
    """``mlpq submit KIND``."""

    own_commands = OWN_COMMANDS

    def build(self, kind: Kind) -> click.Command:
        return submit_command(kind)


@click.group(cls=SubmitGroup, context_settings=CONTEXT)
def submit() -> None:
    """Submit a job. Run 'mlpq submit KIND --help' for its options.

    A comma list on a numeric or choice option (--lr 0.01,0.1 --batch-size 100,200)
    submits a sweep: one job per combination, all sharing a sweep id. Installed
    packages add kinds (see "Writing a job kind" in the README).

    \b
    Example:
      mlpq submit mnist --epochs 2 --wait
      mlpq submit mnist --lr 0.01,0.05,0.1 --batch-size 100,200
    """

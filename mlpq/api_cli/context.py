"""What every command shares: click's context settings and the API client for the chosen settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mlpq.api_cli.api import Client

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def client(ctx: click.Context) -> Client:
    """A client for the settings the root command stored on the context."""
    from mlpq.api_cli.api import Client  # SQLAlchemy only for commands that use the ledger

    return Client(ctx.find_root().obj)

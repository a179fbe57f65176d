"""The ``mlpq`` command line: the root group, its error handling, and the commands it gathers."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from mlpq import __version__
from mlpq.api_cli.context import CONTEXT
from mlpq.api_cli.params import BROKER_URL, DATABASE_URL
from mlpq.errors import Category, classify
from mlpq.redact import scrub, url_passwords

URL_VARIABLES = ("MLPQ_BROKER_URL", "MLPQ_DATABASE_URL")
URL_OPTIONS = ("--broker-url", "--database-url")
COMMANDS = {
    "submit": "submit_commands", "results": "job_commands", "show": "job_commands", "watch": "job_commands",
    "rerun": "job_commands", "compare": "job_commands", "plot": "job_commands", "cancel": "job_commands",
    "worker": "worker_commands", "workers": "worker_commands", "dead-letters": "worker_commands",
    "ui": "mlpq.ui.command", "db": "db_commands", "data": "data_commands",
    "artifacts": "artifact_commands", "download": "artifact_commands", "delete": "artifact_commands",
}
"""Each command and its module (of ``mlpq.api_cli`` unless dotted: ``mlpq ui`` lives with the web app, which sits
above the CLI): a command imports only its own module."""


class MlpqGroup(click.Group):
    """Loads a command's module only when that command is asked for, and reports every failure as one line
    on stderr: exit 2 for usage, 1 for runtime errors."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        path = module if "." in module else f"mlpq.api_cli.{module}"
        command: click.Command = getattr(importlib.import_module(path), cmd_name.replace("-", "_"))
        return command

    def main(self, args: Any = None, prog_name: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(argv, prog_name or "mlpq", standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            code = fail(exc.format_message() + hint, 2, argv)
        except click.ClickException as exc:
            code = fail(exc.format_message(), exc.exit_code, argv)
        except click.Abort:
            code = fail("aborted", 130, argv)
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if getattr(ctx.obj, "debug", False):  # MLPQ_DEBUG=1
                raise
            raise translate(exc) from None


def fail(message: str, code: int, argv: list[str]) -> int:
    """Print ``Error: message`` on stderr, scrubbed of every password the URLs in use carry; return ``code``."""
    click.echo(f"Error: {scrub(message, url_passwords(given_urls(argv)))}", err=True)
    return code


def given_urls(argv: list[str]) -> list[str]:
    """The URLs in the environment and on the command line (``--broker-url X`` or ``--broker-url=X``)."""
    urls = [os.environ.get(name, "") for name in URL_VARIABLES]
    for index, arg in enumerate(argv):
        option, _, value = arg.partition("=")
        if option in URL_OPTIONS:
            urls.append(value or (argv[index + 1] if index + 1 < len(argv) else ""))
    return urls


def translate(exc: Exception) -> click.ClickException:
    """A failure as a click error with its category's exit code (see ``mlpq.errors``): a usage error for
    ``USAGE``, and for an unexpected one a hint at the traceback."""
    failure = classify(exc)
    if failure.category is Category.USAGE:
        return click.UsageError(failure.message)
    if failure.category is Category.UNEXPECTED:
        return click.ClickException(f"{failure.message} (set MLPQ_DEBUG=1 for a traceback)")
    error = click.ClickException(failure.message)
    error.exit_code = failure.category.exit_code
    return error


@click.group(name="mlpq", cls=MlpqGroup, context_settings=CONTEXT)
@click.option("--broker-url", type=BROKER_URL, metavar="URL",
              help="Redis URL. [env: MLPQ_BROKER_URL; default: redis://localhost:6379/0]")
@click.option("--database-url", type=DATABASE_URL, metavar="URL",
              help="SQLAlchemy URL of the job ledger. [env: MLPQ_DATABASE_URL; default: SQLite in the user data dir]")
@click.version_option(__version__, "-V", "--version")
@click.pass_context
def cli(ctx: click.Context, broker_url: str | None, database_url: str | None) -> None:
    """mlpq: queue small PyTorch experiments on device-pinned workers.

    \b
    Example:
      mlpq worker --device cpu &
      mlpq submit himmelblau --start 4,0 --wait
      mlpq results
    """
    from mlpq.config import Settings, SettingsError, unknown_variables  # pydantic-settings: not for --help

    for warning in unknown_variables():
        click.echo(warning, err=True)
    try:
        ctx.obj = Settings.from_env(broker_url=broker_url, database_url=database_url)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="mlpq")

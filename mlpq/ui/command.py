"""``mlpq ui``: serve the web app. Starlette, Jinja2 and uvicorn are imported only when it runs."""

from __future__ import annotations

import copy
import ipaddress
import os
import socket
import threading
import webbrowser
from typing import Any

import click

from mlpq.api_cli.context import CONTEXT, client
from mlpq.api_cli.params import DNS_NAME, AsciiIntRange

LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in LOOPBACK_NAMES


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port, or a one-line error (port taken, unknown host)."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def logging_config() -> dict[str, Any]:
    """uvicorn's logging, and one line for each failed request from the app's ``mlpq.ui`` logger."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["mlpq.ui"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


@click.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback should have MLPQ_UI_TOKEN set.")
@click.option("--port", type=AsciiIntRange(0, 65535), default=8765, show_default=True, help="0: any free port.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--allowed-host", "allowed_hosts", type=DNS_NAME, multiple=True, metavar="NAME",
              help="Also answer requests for this name (repeatable). Addresses, localhost and the --host name "
                   "are always answered; any other Host header is refused, so no other site can read the page "
                   "by DNS rebinding.")
@click.option("--allow-actions", is_flag=True, help="Offer cancel and rerun (needs MLPQ_UI_TOKEN, asked for at sign-in).")
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, open_browser: bool, allowed_hosts: tuple[str, ...],
       allow_actions: bool) -> None:
    """Serve a web page of jobs, sweeps and workers, updating live.

    With MLPQ_UI_TOKEN set, every page asks for the token first (the JSON
    endpoints take 'Authorization: Bearer TOKEN'). Cancel and rerun buttons
    appear only with --allow-actions. Reached by a name other than localhost
    or the --host one, it needs --allowed-host NAME.

    \b
    Example:
      mlpq ui --open
      ssh -L 8765:127.0.0.1:8765 gpu-box   # then open http://127.0.0.1:8765 here
    """
    api = client(ctx)
    token = api.settings.ui_token
    if allow_actions and not token:
        raise click.UsageError("--allow-actions needs a token: set MLPQ_UI_TOKEN")
    api.list(limit=1)  # fail now, in one line, if the ledger cannot be read
    import uvicorn

    from mlpq.ui.app import create_app

    sock = listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{f'[{bound_host}]' if ':' in bound_host else bound_host}:{bound_port}/"
    where = "this machine only; from elsewhere use an SSH tunnel" if is_loopback(host) else "reachable from other hosts"
    click.echo(f"mlpq ui on {url} ({where}; {'actions on' if allow_actions else 'read-only'}); Ctrl-C stops it",
               err=True)
    if not is_loopback(host) and not token:
        click.echo(f"Warning: anyone who can reach {host}:{bound_port} can read the ledger: set MLPQ_UI_TOKEN",
                   err=True)
    app = create_app(api, token=token, allow_actions=allow_actions, allowed_hosts=[*allowed_hosts, host],
                     debug=bool(os.environ.get("MLPQ_DEBUG")))
    server = uvicorn.Server(uvicorn.Config(app, log_config=logging_config(), log_level="warning", access_log=False))
    if open_browser:
        threading.Timer(1.0, webbrowser.open, (url,)).start()
    server.run(sockets=[sock])

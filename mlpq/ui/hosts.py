"""Which ``Host`` headers the web app answers, so that no other site's page can read it by DNS rebinding.

A rebinding page points a name of its own (``attacker.example``) at this server's address: its requests
then carry that name in ``Host``. An IP address in ``Host`` is never a rebound name, so every address is
accepted, and of names only ``localhost`` and those given with ``mlpq ui --allowed-host``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

ALWAYS_ALLOWED = frozenset({"localhost"})
HOST_HEADER = re.compile(r"\[(?P<ipv6>[0-9A-Fa-f:.]+)\](?::[0-9]{1,5})?|(?P<name>[^:\[\]]+)(?::[0-9]{1,5})?")


def host_of(header: str) -> str:
    """The host of a ``Host`` header without its port (``example.org``, ``127.0.0.1``, ``::1`` from
    ``[::1]:80``); empty for a malformed header."""
    match = HOST_HEADER.fullmatch(header)
    return (match["ipv6"] or match["name"]) if match else ""


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class AllowedHosts:
    """ASGI middleware: a one-line 400 for a request whose ``Host`` is neither an address nor an allowed name."""

    def __init__(self, app: ASGIApp, names: Iterable[str] = ()) -> None:
        self.app = app
        self.names = ALWAYS_ALLOWED | {name.lower() for name in names}

    def allows(self, header: str) -> bool:
        host = host_of(header).lower()
        return host in self.names or is_address(host)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.allows(Headers(scope=scope).get("host", "")):
            response = PlainTextResponse("unknown Host: mlpq ui answers its addresses, localhost and the names "
                                         "given with --allowed-host\n", status_code=400)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

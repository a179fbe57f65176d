"""Rules for the places a user names: data directories (``--data-dir``, ``MLPQ_DATA_DIR``) and broker URLs.

Directories are checked by name, never by trying them: running as root, a
writability test passes for ``/``, ``/etc`` or ``/proc``.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from mlpq.redact import shown

MAX_PATH_CHARS = 1024
MAX_NAME_CHARS = 255
SYSTEM_TREES = frozenset(PurePosixPath(p) for p in (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys", "/usr"))
"""Never a data directory, nor anything inside them."""
SYSTEM_DIRS = frozenset(PurePosixPath(p) for p in (
    "/", "/home", "/media", "/mnt", "/opt", "/root", "/run", "/srv", "/tmp", "/var", "/var/lib", "/var/log"))
"""Never a data directory themselves; a directory inside them is fine."""


BROKER_SCHEMES = ("redis", "rediss", "unix")


class LocationError(ValueError):
    """A directory or URL breaks one of the rules; the message says which (its password masked)."""


def check_broker_url(url: str) -> str:
    """``url`` if it is a Redis URL with a host, a numeric port and a numeric database; raises ``LocationError``."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    database = parts.path.strip("/")
    if parts.scheme not in BROKER_SCHEMES:
        problem = "not redis://, rediss:// or unix://"
    elif parts.scheme == "unix":
        if parts.path:
            return url
        problem = "no socket path"
    elif not parts.hostname:
        problem = "no host"
    elif port == 0:
        problem = "the port is not a number from 1 to 65535"
    elif database and not (database.isascii() and database.isdigit()):
        problem = "the database is not a number"
    else:
        return url
    raise LocationError(f"malformed broker URL {shown(url)}: {problem}; use redis://HOST[:PORT][/DB]")


def check_data_dir(text: str) -> str:
    """``text`` if it is an absolute path of bounded length outside the system directories.

    Symbolic links that exist are followed, so a link to ``/etc`` is refused too.
    Raises ``LocationError``.
    """
    if not text or "\0" in text:
        raise LocationError(f"{shown(text)} is not a path")
    if len(text) > MAX_PATH_CHARS:
        raise LocationError(f"{shown(text)} is longer than {MAX_PATH_CHARS} characters")
    path = PurePosixPath(text)
    if not path.is_absolute():
        raise LocationError(f"{shown(text)} is not an absolute path (start it with /)")
    if any(len(part) > MAX_NAME_CHARS for part in path.parts):
        raise LocationError(f"{shown(text)} has a name longer than {MAX_NAME_CHARS} characters")
    for candidate in (PurePosixPath(os.path.normpath(text)), PurePosixPath(Path(text).resolve())):
        system = next((tree for tree in SYSTEM_TREES if candidate == tree or tree in candidate.parents),
                      candidate if candidate in SYSTEM_DIRS else None)
        if system is not None:
            where = "the" if candidate == system else "inside the"
            raise LocationError(f"{shown(text)} is {where} system directory {system}: choose a directory of your own")
    return text

"""The places a user names and their defaults: data directories, host names, broker and database URLs.

Settings (``mlpq.config``), the CLI's parameters and the ledger (``mlpq.db``) all
take their rules from here. Directories are checked by name, never by trying
them: running as root, a writability test passes for ``/``, ``/etc`` or ``/proc``.
SQLAlchemy and platformdirs are imported only when a URL or a default is asked
for (``mlpq --help`` imports this module). A ``rediss://`` broker's TLS
options are read from its URL in one place, ``broker_tls``, for the CLI and the
workers alike.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from mlpq.errors import UsageError
from mlpq.redact import cut, shown

DEFAULT_BROKER_URL = "redis://localhost:6379/0"

MAX_PATH_CHARS = 1024
MAX_NAME_CHARS = 255
SYSTEM_TREES = frozenset(PurePosixPath(p) for p in (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys", "/usr"))
"""Never a data directory, nor anything inside them."""
SYSTEM_DIRS = frozenset(PurePosixPath(p) for p in (
    "/", "/home", "/media", "/mnt", "/opt", "/root", "/run", "/srv", "/tmp", "/var", "/var/lib", "/var/log"))
"""Never a data directory themselves; a directory inside them is fine."""
HOSTNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


BROKER_SCHEMES = ("redis", "rediss", "unix")
PSYCOPG_DRIVERS = ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2")
"""PostgreSQL URLs that mean psycopg 3 (the one driver installed; psycopg2's URLs mean the same server)."""
SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")
DATABASE_URL_FORMS = "use sqlite:///PATH or postgresql://USER@HOST[:PORT]/DB"
TLS_PREFIX = "ssl_"
"""Query keys that are TLS options (``ssl_ca_certs``, ``ssl_cert_reqs``, ...), as redis-py names them."""
VERIFIED = {"ssl_cert_reqs": "required"}
"""redis-py's own default, given explicitly: kombu's for a ``rediss://`` URL without options is no verification."""


class LocationError(UsageError, ValueError):
    """A directory or URL breaks one of the rules; the message says which (its password masked)."""


class DatabaseURLError(LocationError):
    """The database URL cannot be parsed, names an unsupported backend or driver, or cannot hold a ledger."""


def check_hostname(text: str) -> str:
    """``text`` if it can name a worker's host: up to 63 letters, digits, ``.``, ``-`` and ``_``; raises
    ``LocationError``."""
    if HOSTNAME_PATTERN.fullmatch(text) is None:
        raise LocationError(f"invalid host name {shown(text)}: use up to 63 letters, digits, '.', '-' or '_'")
    return text


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
            broker_tls(url)
            return url
        problem = "no socket path"
    elif not parts.hostname:
        problem = "no host"
    elif port == 0:
        problem = "the port is not a number from 1 to 65535"
    elif database and not (database.isascii() and database.isdigit()):
        problem = "the database is not a number"
    else:
        broker_tls(url)
        return url
    raise LocationError(f"malformed broker URL {shown(url)}: {problem}; use redis://HOST[:PORT][/DB]")


def broker_tls(url: str) -> tuple[str, dict[str, Any] | None]:
    """``url`` without the TLS options in its query, and those options as redis-py takes them from the URL.

    ``None`` unless the URL is ``rediss://``. A ``rediss://`` broker's certificate
    is verified (``ssl_cert_reqs=required``) against the system's CAs, or those
    ``ssl_ca_certs`` names; ``ssl_cert_reqs=none`` turns that off. The CLI's
    Redis clients and the workers' Celery connection both take their TLS
    options from here. Raises ``LocationError`` for an option redis-py refuses.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = [key for key, _ in query if key.startswith(TLS_PREFIX)]
    plain = parts._replace(query=urlencode([(k, v) for k, v in query if not k.startswith(TLS_PREFIX)])).geturl()
    if parts.scheme != "rediss":
        if given:
            raise LocationError(f"broker URL {shown(url)}: TLS options ({', '.join(given)}) need rediss://")
        return url, None
    if not given:
        return plain, dict(VERIFIED)
    import difflib
    import inspect

    import redis
    from redis.connection import parse_url

    known = [name for name in inspect.signature(redis.SSLConnection).parameters if name.startswith(TLS_PREFIX)]
    unknown = next((key for key in given if key not in known), None)
    if unknown is not None:
        close = difflib.get_close_matches(unknown, known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"redis-py takes {', '.join(known[:4])}, ..."
        raise LocationError(f"broker URL {shown(url)}: unknown TLS option {cut(unknown)}; {hint}")
    try:
        options = {**VERIFIED, **{k: v for k, v in parse_url(url).items() if k.startswith(TLS_PREFIX)}}
        redis.SSLConnection(**options)  # redis-py's own checks of the values; nothing connects
    except (ValueError, redis.RedisError) as exc:
        raise LocationError(f"broker URL {shown(url)}: {exc}") from None
    return plain, options


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


def default_database_url() -> str:
    """An SQLite file in the user's data directory."""
    import platformdirs

    return f"sqlite:///{Path(platformdirs.user_data_dir('mlpq')) / 'mlpq.db'}"


def default_data_dir() -> Path:
    """Where datasets are downloaded and cached: the user's cache directory."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("mlpq")) / "data"


def normalise_database_url(url: str) -> str:
    """``url`` as SQLAlchemy takes it: every PostgreSQL URL means psycopg 3. Raises ``DatabaseURLError``.

    An in-memory SQLite database is refused: each connection would get its own,
    empty one, so a ledger "created" there is gone when the command ends.
    """
    from sqlalchemy.engine import make_url  # SQLAlchemy is slow to import: only once a URL is checked
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        port = parsed.port
    except (ArgumentError, ValueError):
        raise DatabaseURLError(f"malformed database URL {shown(url)}: {DATABASE_URL_FORMS}") from None
    if port is not None and not 0 < port < 65536:
        raise DatabaseURLError(f"malformed database URL {shown(url)}: the port is not a number from 1 to 65535")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgres", "postgresql"):
        raise DatabaseURLError(f"unsupported database {shown(backend)}: {DATABASE_URL_FORMS}")
    if parsed.drivername not in PSYCOPG_DRIVERS + SQLITE_DRIVERS:
        raise DatabaseURLError(f"unsupported database driver {shown(parsed.drivername)}: {DATABASE_URL_FORMS} "
                               "(psycopg 3 is the PostgreSQL driver)")
    if parsed.drivername in PSYCOPG_DRIVERS:
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif _in_memory(parsed.database, parsed.query):
        raise DatabaseURLError(f"{shown(url)} is an in-memory SQLite database, which cannot hold a ledger "
                               "(it is gone when the command ends): use sqlite:///PATH")
    return parsed.render_as_string(hide_password=False)


def _in_memory(database: str | None, query: Mapping[str, object]) -> bool:
    if not database or database == ":memory:":
        return True
    uri = str(query.get("uri", "")).lower() in ("true", "1")
    return uri and (database.startswith("file::memory:") or "memory" in str(query.get("mode", "")))


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite ledger's URL; ``None`` for PostgreSQL. Raises ``DatabaseURLError``."""
    from sqlalchemy.engine import make_url

    parsed = make_url(normalise_database_url(url))
    return Path(str(parsed.database)) if parsed.get_backend_name() == "sqlite" else None


def is_default_ledger(url: str) -> bool:
    """Whether ``url`` is the default SQLite ledger in the user's data directory."""
    return sqlite_file(url) == sqlite_file(default_database_url())

"""The failures a user may meet, by category: the CLI reports each with an exit code, the web UI with an HTTP status.

Every mlpq exception a front end shows derives from a category class here (``JobLookupError`` is a
``NotFoundError``, ``BrokerUnavailableError`` an ``UnavailableError``); ``classify`` sorts those, SQLAlchemy's
errors and anything unforeseen. Nothing is decided by an error's text. SQLAlchemy is imported only once
something failed, so ``mlpq --help`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar


class Category(Enum):
    """A kind of failure, with the CLI's exit code and the UI's HTTP status for it."""

    USAGE = ("usage", 2, 400)
    """The command line, a setting or a request is malformed."""
    INVALID = ("invalid", 1, 400)
    """Well formed, but not something this host can do (a device it does not have)."""
    NOT_FOUND = ("not found", 1, 404)
    UNAVAILABLE = ("unavailable", 1, 503)
    """The broker or the database cannot be reached."""
    FAILED = ("failed", 1, 500)
    """The ledger is not as this mlpq needs it, or refused what was asked."""
    UNEXPECTED = ("unexpected", 1, 500)
    """Nobody foresaw it: a bug, or a failure of a library mlpq does not sort."""

    def __init__(self, label: str, exit_code: int, http_status: int) -> None:
        self.label, self.exit_code, self.http_status = label, exit_code, http_status


class MlpqError(Exception):
    """A failure mlpq foresaw; its class says its category (``FAILED`` unless a subclass says otherwise)."""

    category: ClassVar[Category] = Category.FAILED

    def report(self) -> str:
        """The line a front end shows."""
        return str(self)


class UsageError(MlpqError):
    category = Category.USAGE


class InvalidError(MlpqError):
    category = Category.INVALID


class NotFoundError(MlpqError):
    category = Category.NOT_FOUND


class UnavailableError(MlpqError):
    category = Category.UNAVAILABLE


@dataclass(frozen=True)
class Failure:
    """An exception sorted: its category and the line to show."""

    category: Category
    message: str


def classify(exc: BaseException) -> Failure:
    """The category and message of ``exc``: mlpq's errors by their class, SQLAlchemy's unreachable database
    (``OperationalError``) and its other errors, and anything else as unexpected."""
    if isinstance(exc, MlpqError):
        return Failure(exc.category, exc.report())
    from sqlalchemy.exc import OperationalError, SQLAlchemyError  # only once something failed

    if isinstance(exc, OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        return Failure(Category.UNAVAILABLE, f"cannot reach the database: {reason}")
    if isinstance(exc, SQLAlchemyError):
        return Failure(Category.FAILED, f"database error: {str(exc).splitlines()[0]}")
    return Failure(Category.UNEXPECTED, f"{type(exc).__name__}: {exc}")

"""Failures sorted by type into the CLI's exit codes and the UI's HTTP statuses, never by their text."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from mlpq.api_cli.api import BrokerUnavailableError
from mlpq.api_cli.cli import translate
from mlpq.db.engine import LedgerDirectoryError
from mlpq.locations import DatabaseURLError
from mlpq.db.ledger import LedgerChanged
from mlpq.db.lookup import JobLookupError
from mlpq.db.migrate import SchemaError
from mlpq.devices import DeviceError
from mlpq.errors import Category, classify

FAILURES = [
    (DatabaseURLError("malformed database URL 'x'"), Category.USAGE, 2, 400, "malformed database URL 'x'"),
    (BrokerUnavailableError("cannot reach the broker at redis://h:1/0"), Category.UNAVAILABLE, 1, 503,
     "cannot reach the broker at redis://h:1/0"),
    (JobLookupError("no job abcd"), Category.NOT_FOUND, 1, 404, "no job abcd"),
    (DeviceError("no GPU for cuda:1 on this host"), Category.INVALID, 1, 400, "no GPU for cuda:1 on this host"),
    (SchemaError("no ledger at '/x.db'"), Category.FAILED, 1, 500, "no ledger at '/x.db'"),
    (LedgerDirectoryError("no such directory: '/x'"), Category.FAILED, 1, 500, "no such directory: '/x'"),
    (LedgerChanged("the ledger file /x.db was deleted", cold=True), Category.FAILED, 1, 500,
     "the ledger file /x.db was deleted: the worker stopped"),
    (OperationalError("SELECT 1", {}, Exception("connection refused\n\tIs the server running?")),
     Category.UNAVAILABLE, 1, 503, "cannot reach the database: connection refused"),
    (IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed: jobs.id")), Category.FAILED, 1, 500,
     "database error: (builtins.Exception) UNIQUE constraint failed: jobs.id"),
    (RuntimeError("cannot reach the database"), Category.UNEXPECTED, 1, 500, "RuntimeError: cannot reach the database"),
    (KeyError("no job abcd"), Category.UNEXPECTED, 1, 500, "KeyError: 'no job abcd'"),
]


@pytest.mark.parametrize(("exc", "category", "exit_code", "http_status", "message"), FAILURES)
def test_each_failure_is_sorted_by_its_type(exc: Exception, category: Category, exit_code: int, http_status: int,
                                            message: str) -> None:
    failure = classify(exc)
    assert (failure.category, failure.message) == (category, message)
    assert (category.exit_code, category.http_status) == (exit_code, http_status)


@pytest.mark.parametrize(("exc", "category", "exit_code", "http_status", "message"), FAILURES)
def test_the_cli_reports_each_with_its_exit_code(exc: Exception, category: Category, exit_code: int,
                                                 http_status: int, message: str) -> None:
    error = translate(exc)
    hint = " (set MLPQ_DEBUG=1 for a traceback)" if category is Category.UNEXPECTED else ""
    assert (error.exit_code, error.format_message()) == (exit_code, message + hint)


def test_importing_the_errors_loads_nothing_heavy() -> None:
    probe = ("import sys\nimport mlpq.errors\n"
             "print(sorted(m for m in ('sqlalchemy', 'pydantic', 'click') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr

"""Fault tests: short leases so that recovery happens within seconds, and gates that hold jobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.private_services import PrivateRedis
from tests.jobkinds import fault_kind
from tests.jobkinds.fault_kind import Gate

FAST_LEASES = {"MLPQ_LEASE_SECONDS": "3", "MLPQ_HEARTBEAT_SECONDS": "0.5", "MLPQ_MAINTENANCE_SECONDS": "1",
               "MLPQ_DB_RETRY_SECONDS": "2"}


@pytest.fixture
def fault_env(service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, **FAST_LEASES}


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    """A gate for ``block`` jobs of the test-only ``fault`` kind, which this process may submit meanwhile
    (its workers need ``fault_kind.worker_env``)."""
    folder = tmp_path / "gate"
    folder.mkdir()
    with fault_kind.visible_here():
        yield Gate(folder)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A redis-server of the test's own, which it may stop, restart or fill up."""
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()

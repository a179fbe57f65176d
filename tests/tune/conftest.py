"""Studies' fixtures: short leases, so a lost trial is requeued within seconds, and a gate that holds trials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jobkinds import fault_kind
from tests.jobkinds.fault_kind import Gate

FAST_LEASES = {"MLPQ_LEASE_SECONDS": "3", "MLPQ_HEARTBEAT_SECONDS": "0.5", "MLPQ_MAINTENANCE_SECONDS": "1",
               "MLPQ_DB_RETRY_SECONDS": "2"}


@pytest.fixture
def env(service_env: dict[str, str]) -> dict[str, str]:
    """Real processes' environment, knowing the test-only ``fault`` kind."""
    return fault_kind.worker_env({**service_env, **FAST_LEASES})


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    folder = tmp_path / "gate"
    folder.mkdir()
    with fault_kind.visible_here():
        yield Gate(folder)

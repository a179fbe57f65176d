"""Fault tests: short leases so that recovery happens within seconds."""

from __future__ import annotations

import pytest

FAST_LEASES = {"MLPQ_LEASE_SECONDS": "3", "MLPQ_HEARTBEAT_SECONDS": "0.5", "MLPQ_MAINTENANCE_SECONDS": "1",
               "MLPQ_DB_RETRY_SECONDS": "2"}


@pytest.fixture
def fault_env(service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, **FAST_LEASES}

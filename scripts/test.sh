#!/usr/bin/env bash
# Run the whole test suite: sets up .venv, makes sure Redis and PostgreSQL are up, then runs pytest
# in parallel (pytest-xdist; MLPQ_TEST_PROCESSES, default 3: most tests wait on worker processes).
# Extra arguments go to pytest, e.g.: bash scripts/test.sh -k cli -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh
exec .venv/bin/python -m pytest -n "${MLPQ_TEST_PROCESSES:-3}" --durations=20 "$@"

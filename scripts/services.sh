#!/usr/bin/env bash
# Make sure the local Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432) the tests use are up,
# starting them the way this machine's image does when they are down, and that the tools the tests
# need are installed.
set -euo pipefail

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! redis_up; then
    echo "==> starting redis-server on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 50); do redis_up && break; sleep 0.2; done
fi
redis_up || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }

if ! postgres_up; then
    echo "==> starting PostgreSQL on 127.0.0.1:5432"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
    for _ in $(seq 50); do postgres_up && break; sleep 0.2; done
fi
postgres_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }

# Tools the tests use offline: docker-compose and kubectl (kustomize) render the deployment files,
# openssl makes the TLS tests' certificates, libfaketime skews one worker's clock in the multi-host test.
missing=()
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v kubectl >/dev/null || missing+=(kubectl)
command -v openssl >/dev/null || missing+=(openssl)
command -v faketime >/dev/null || missing+=(faketime libfaketime)
command -v chromium >/dev/null || missing+=(chromium)            # the mlpq ui browser test, headless
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "missing: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi


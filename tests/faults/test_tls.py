"""TLS to both services: a worker and the CLI on a TLS-only redis-server (``rediss://``, verified against
the system's CAs or the ``ssl_ca_certs`` in the URL) and a TLS-only PostgreSQL (``sslmode=require`` /
``verify-full``), both with a certificate signed by a throw-away CA made here with openssl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.faults.private_services import PrivatePostgres, PrivateRedis
from tests.services import mlpq_command, run_mlpq, start_worker


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=120)


@pytest.fixture
def certificates(tmp_path: Path) -> Path:
    """``ca.pem``, ``other-ca.pem`` and ``server.pem``/``server.key`` for 127.0.0.1, signed by ca.pem."""
    d = tmp_path / "certs"
    d.mkdir()
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                "-days", "2", "-subj", f"/CN=mlpq test {ca}", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=d)
    return d


@pytest.fixture
def tls_redis(certificates: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tls=(certificates / "server.pem", certificates / "server.key"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def tls_postgres(certificates: Path) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.require_tls(certificates / "server.pem", certificates / "server.key")
    server.start()
    yield server
    server.remove()


def on_fresh_ledger(broker_url: str, tmp_path: Path) -> dict[str, str]:
    """An environment for ``broker_url`` and a fresh SQLite ledger, upgraded."""
    env = {**os.environ, "MLPQ_BROKER_URL": broker_url, "MLPQ_DATABASE_URL": f"sqlite:///{tmp_path / 'l.db'}",
           "MLPQ_DATA_DIR": str(tmp_path / "data")}
    assert run_mlpq("db", "upgrade", env=env).returncode == 0
    return env


def submitting_through(broker_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``mlpq submit himmelblau`` to ``broker_url``, on a fresh SQLite ledger."""
    return run_mlpq("submit", "himmelblau", env=on_fresh_ledger(broker_url, tmp_path), timeout=60)


def test_the_services_refuse_plain_connections(tls_redis: PrivateRedis, tls_postgres: PrivatePostgres,
                                               tmp_path: Path) -> None:
    """So the successes below really went through TLS."""
    done = submitting_through(f"redis://127.0.0.1:{tls_redis.port}/0", tmp_path)
    assert done.returncode == 1 and "cannot reach the broker" in done.stderr
    env = {**os.environ, "MLPQ_DATABASE_URL": tls_postgres.url + "?sslmode=disable"}
    done = run_mlpq("results", env=env, timeout=60)
    assert done.returncode == 1 and "cannot reach the database" in done.stderr


def test_a_broker_certificate_from_another_ca_is_refused(tls_redis: PrivateRedis, certificates: Path,
                                                          tmp_path: Path) -> None:
    done = submitting_through(
        f"{tls_redis.url}?ssl_cert_reqs=required&ssl_ca_certs={certificates / 'other-ca.pem'}", tmp_path)
    assert done.returncode == 1 and "cannot reach the broker" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("query", ["", "?ssl_ca_certs={certs}/other-ca.pem",
                                   "?ssl_cert_reqs=required&ssl_ca_certs={certs}/other-ca.pem"],
                         ids=["system CAs", "another CA", "another CA, required"])
def test_a_worker_refuses_a_broker_whose_certificate_it_cannot_verify(
        tls_redis: PrivateRedis, certificates: Path, tmp_path: Path, query: str) -> None:
    env = on_fresh_ledger(tls_redis.url + query.format(certs=certificates), tmp_path)
    worker = subprocess.Popen(mlpq_command("worker", "--device", "cpu"), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output = worker.communicate(timeout=60)[0].strip()
    finally:
        if worker.poll() is None:  # still running: it trusted the broker
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    assert worker.returncode == 1, output
    assert output.startswith("Error: cannot verify the broker's TLS certificate"), output
    assert "CERTIFICATE_VERIFY_FAILED" in output and len(output.splitlines()) == 1


@pytest.mark.integration
def test_a_worker_given_the_ca_in_the_url_verifies_the_broker_and_runs_a_job(
        tls_redis: PrivateRedis, certificates: Path, tmp_path: Path) -> None:
    env = on_fresh_ledger(f"{tls_redis.url}?ssl_ca_certs={certificates / 'ca.pem'}", tmp_path)
    worker = start_worker(env, tmp_path / "worker.log", "--device", "cpu")
    try:
        done = run_mlpq("submit", "himmelblau", "--steps", "50", "--wait", "--json", env=env)
        assert done.returncode == 0, done.stderr + worker.log()
        assert json.loads(done.stdout)["status"] == "succeeded"
    finally:
        worker.stop()


@pytest.mark.integration
def test_a_worker_and_the_cli_work_over_tls_to_redis_and_postgresql(
        tls_redis: PrivateRedis, tls_postgres: PrivatePostgres, certificates: Path, tmp_path: Path) -> None:
    ca = certificates / "ca.pem"
    env = {**os.environ,
           "MLPQ_BROKER_URL": f"{tls_redis.url}?ssl_cert_reqs=required&ssl_ca_certs={ca}",
           "MLPQ_DATABASE_URL": f"{tls_postgres.url}?sslmode=verify-full&sslrootcert={ca}",
           "MLPQ_DATA_DIR": str(tmp_path / "data")}
    upgraded = run_mlpq("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    worker = start_worker(env, tmp_path / "worker.log", "--device", "cpu")
    try:
        cli_env = {**env, "MLPQ_DATABASE_URL": f"{tls_postgres.url}?sslmode=require"}
        done = run_mlpq("submit", "himmelblau", "--steps", "200", "--wait", "--json", env=cli_env)
        assert done.returncode == 0, done.stderr + worker.log()
        assert json.loads(done.stdout)["status"] == "succeeded"
        [listed] = json.loads(run_mlpq("workers", "--json", env=cli_env).stdout)
        assert listed["device"] == "cpu"
        engine = create_engine(f"{tls_postgres.url}?sslmode=require")
        with engine.connect() as connection:
            ssl_clients = connection.execute(text(
                "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl")).scalar()
        engine.dispose()
        assert ssl_clients >= 1
    finally:
        worker.stop()

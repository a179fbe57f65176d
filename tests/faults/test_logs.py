"""A real worker's log while its database or broker is away and while jobs fail: one line per event, however
many maintenance rounds fail, and no traceback unless MLPQ_DEBUG=1.

Rounds are counted where they happen, not by the clock: a database outage is a
listener on the stopped server's port that counts (and drops) each connection a
round makes; a broker that refuses writes counts each refused ``SET`` of the
maintenance lock in its command statistics.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import text

from mlpq.db.engine import make_engine
from mlpq.db.status import JobStatus
from tests.conftest import migrate
from tests.faults import helpers
from tests.faults.private_services import PrivatePostgres, PrivateRedis
from tests.jobkinds import fault_kind
from tests.services import WorkerProcess

pytestmark = pytest.mark.integration

ROUNDS = 20
"""Failed maintenance rounds each outage test waits for: each used to log a ~100-line traceback."""
FAST_ROUNDS = {"MLPQ_MAINTENANCE_SECONDS": "0.2"}
ENDED = re.compile(r"maintenance: outage ended after .+ \((\d+) failed rounds\)")


@contextmanager
def counting_listener(port: int) -> Iterator[list[int]]:
    """Listen on ``port`` (a stopped database's), accepting and closing every connection; yields their count."""
    accepted = [0]
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            connection.close()
            accepted[0] += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield accepted
    finally:
        stop.set()
        thread.join(5)
        server.close()


def outage_lines(worker: WorkerProcess) -> list[str]:
    return [line for line in worker.log().splitlines() if "outage" in line]


def assert_logged_in_two_lines(worker: WorkerProcess, cause: str) -> None:
    """The outage began and ended in one line each, with no line per round and no traceback."""
    log = worker.log()
    began, ended = outage_lines(worker)
    assert "maintenance: outage began: " in began and cause in began, log
    failed_rounds = ENDED.search(ended)
    assert failed_rounds and int(failed_rounds[1]) >= ROUNDS, log
    assert [line for line in log.splitlines() if "maintenance" in line] == [began, ended]
    assert "Traceback" not in log, log  # each round used to log ~12 lines


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the ledger is a private PostgreSQL
def test_a_database_outage_is_logged_when_it_begins_and_ends_not_every_round(service_env: dict[str, str],
                                                                             tmp_path: Path) -> None:
    server = PrivatePostgres()
    try:
        server.start()
        env = {**service_env, **FAST_ROUNDS, "MLPQ_DATABASE_URL": migrate(server.url)}
        worker = helpers.new_worker(env, tmp_path / "worker.log")
        try:
            server.stop()
            with counting_listener(server.port) as accepted:
                helpers.eventually(lambda: outage_lines(worker), 60, "the outage's first line")
                seen = accepted[0]
                helpers.eventually(lambda: accepted[0] >= seen + ROUNDS, 60, f"{ROUNDS} failed rounds")
            server.start()
            helpers.eventually(lambda: len(outage_lines(worker)) == 2, 60, "the outage's last line")
        finally:
            worker.stop()
    finally:
        server.remove()
    assert_logged_in_two_lines(worker, "OperationalError")
    assert len(worker.log().split(" ready.", 1)[1].splitlines()) < 10, worker.log()


def refused_sets(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_set", {}).get("rejected_calls", 0))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_broker_that_refuses_writes_is_logged_when_it_begins_and_ends(service_env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    server = PrivateRedis()
    server.start()
    try:
        worker = helpers.new_worker({**service_env, **FAST_ROUNDS, "MLPQ_BROKER_URL": server.url},
                                    tmp_path / "worker.log")
        try:
            client = redis.Redis(port=server.port)
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", 1)  # every write is refused: "OOM command not allowed"
            helpers.eventually(lambda: outage_lines(worker), 60, "the outage's first line")
            seen = refused_sets(client)
            helpers.eventually(lambda: refused_sets(client) >= seen + ROUNDS, 60, f"{ROUNDS} failed rounds")
            client.config_set("maxmemory", 0)
            helpers.eventually(lambda: len(outage_lines(worker)) == 2, 60, "the outage's last line")
        finally:
            worker.stop()
    finally:
        server.stop()
    assert_logged_in_two_lines(worker, "OutOfMemoryError")


@pytest.fixture
def env_with_faults(fault_env: dict[str, str]) -> Iterator[dict[str, str]]:
    with fault_kind.visible_here():  # so this process can submit the fault kind
        yield fault_kind.worker_env(fault_env)


def running(env: dict[str, str], job_id: str, attempt: int = 1) -> bool:
    job = helpers.job(env, job_id)
    return job.status is JobStatus.RUNNING and job.attempts == attempt


def lines_about(log: str, job_id: str, word: str) -> list[str]:
    return [line for line in log.splitlines() if job_id in line and word in line]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_failed_jobs_lost_processes_and_a_shutdown_log_one_line_each(env_with_faults: dict[str, str],
                                                                     tmp_path: Path) -> None:
    env = env_with_faults
    worker = helpers.new_worker(env, tmp_path / "worker.log")
    try:
        raised = helpers.submit(env, "fault", action="raise", message="boom\x1b]0;title\x07")
        assert helpers.finished(env, raised).status is JobStatus.FAILED
        blocking = helpers.submit(env, "fault", action="block", until=str(tmp_path / "released"))
        helpers.eventually(lambda: running(env, blocking), 60, "the blocking job to run")
        unknown = helpers.submit(env, "fault", action="pid")  # waits behind the blocking job
        engine = make_engine(env["MLPQ_DATABASE_URL"])
        with engine.begin() as connection:
            connection.execute(text("UPDATE jobs SET kind = 'no-such-kind' WHERE id = :id"), {"id": unknown})
        engine.dispose()
        (tmp_path / "released").touch()
        assert helpers.finished(env, unknown).status is JobStatus.FAILED
        limited = helpers.submit(env, "fault", timeout_s=1, action="block", until=str(tmp_path / "never"))
        assert helpers.finished(env, limited).status is JobStatus.FAILED
        lost = helpers.submit(env, "fault", action="block", until=str(tmp_path / "never"))
        helpers.eventually(lambda: running(env, lost), 60, "the job whose process is killed to run")
        os.kill(helpers.pool_children(worker)[0], signal.SIGKILL)
        helpers.eventually(lambda: running(env, lost, attempt=2), 60, "the lost job's next attempt")
    finally:
        worker.stop()  # SIGTERM to the whole group: a shutdown while a job runs
    log = worker.log()
    assert "Traceback" not in log, log
    assert "succeeded in" not in log  # Celery's "Task mlpq.run_job[…] succeeded" for every job, failed or not
    [raised_line] = lines_about(log, raised, "failed")
    assert raised_line.endswith(f"job {raised} failed: RuntimeError: boom\\x1b]0;title\\x07")
    [unknown_line] = lines_about(log, unknown, "failed")
    assert unknown_line.endswith(f"job {unknown} failed: unknown kind 'no-such-kind' on this worker "
                                 "(install its package)")
    [limited_line] = lines_about(log, limited, "failed")
    assert limited_line.endswith(f"job {limited} failed: time limit: exceeded 1 s")
    assert len(lines_about(log, blocking, "succeeded")) == 1
    assert "Worker exited prematurely: signal 9 (SIGKILL)" in log
    assert "Worker exited prematurely: signal 15 (SIGTERM)" in log  # the shutdown, in one line too


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_under_mlpq_debug_a_failed_job_logs_its_traceback(env_with_faults: dict[str, str], tmp_path: Path) -> None:
    env = {**env_with_faults, "MLPQ_DEBUG": "1"}
    worker = helpers.new_worker(env, tmp_path / "worker.log")
    try:
        raised = helpers.submit(env, "fault", action="raise", message="boom")
        assert helpers.finished(env, raised).status is JobStatus.FAILED
    finally:
        worker.stop()
    log = worker.log()
    assert len(lines_about(log, raised, "failed")) == 1
    assert "Traceback (most recent call last)" in log.split(f"job {raised} failed")[1]
    assert "RuntimeError: boom" in log

"""The job log capture against a real ledger: what it keeps, in what order, in batches off the job's thread,
capped per job, and stored once though a commit's reply is lost."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from mlpq.db import job_logs, jobs
from mlpq.db.engine import make_engine
from mlpq.db.job_logs import LogLine
from mlpq.devices import Device
from mlpq.worker import job_log
from mlpq.worker.execute import execute_job, with_db_retries
from mlpq.worker.job_log import JobLog
from mlpq.worker.lease import LeaseKeeper
from tests.jobkinds import fault_kind

job = logging.getLogger("tests.job_log")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def new_job(engine: Engine) -> str:
    with engine.begin() as connection:
        job_id = jobs.create_job(connection, "himmelblau", {"steps": 10}, "cpu", timeout_s=60).id
        jobs.claim_job(connection, job_id, "test-host")
        return job_id


def open_log(engine: Engine, job_id: str, attempt: int = 1, interval: float = 0.05) -> JobLog:
    return JobLog.open(engine, job_id, attempt, with_db_retries, retry_s=2, interval=interval)


def end(engine: Engine, log: JobLog, outcome: str = "attempt 1 succeeded") -> None:
    with engine.begin() as connection:
        log.write_end(connection, outcome)


def stored(engine: Engine, job_id: str, attempt: int | None = None) -> list[LogLine]:
    with engine.connect() as connection:
        return job_logs.read_log(connection, job_id, attempt=attempt, limit=100_000)


def texts(lines: list[LogLine]) -> list[tuple[str, str, str]]:
    return [(line.source, line.level, line.line) for line in lines]


def test_stored_lines_split_cut_and_escape_what_a_database_refuses() -> None:
    assert list(job_log.stored_lines("one\ntwo\n")) == [("one", 3), ("two", 3)]
    assert list(job_log.stored_lines("")) == [("", 0)]
    [(cut, size)] = job_log.stored_lines("é" * 10_000)
    assert len(cut) == job_log.MAX_LINE_CHARS and cut.endswith("…") and size == len(cut.encode())
    assert list(job_log.stored_lines("a\x00b\udc80")) == [("a\\x00b\\udc80", 12)]


def test_what_a_job_logs_is_kept_in_order_with_its_source_level_and_the_worker_lines(engine: Engine) -> None:
    job_id = new_job(engine)
    log = open_log(engine, job_id)
    log.event("received by test-host")
    with log.capturing():
        job.info("step %d", 1)
        job.debug("below the level: not kept")
        logging.getLogger("mlpq.job.stdout").info("out \x1b[31m")
        logging.getLogger("mlpq.job.stderr").error("err")
        for machinery in ("celery.worker", "kombu", "billiard", "mlpq.worker.lease", "mlpq.db.jobs"):
            logging.getLogger(machinery).warning("the worker's own: not kept")
        warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
        try:
            raise ValueError("bad")
        except ValueError:
            job.exception("caught")
    job.info("after the attempt: not kept")
    end(engine, log)
    lines = texts(stored(engine, job_id))
    assert lines[:5] == [("worker", "INFO", "received by test-host"), ("job", "INFO", "step 1"),
                         ("stdout", "INFO", "out \x1b[31m"), ("stderr", "ERROR", "err"),
                         ("job", "WARNING", lines[4][2])]
    assert "DeprecationWarning: deprecated thing" in lines[4][2]
    caught = lines.index(("job", "ERROR", "caught"))  # after the warning's lines (its source line too)
    assert lines[caught + 1] == ("job", "ERROR", "Traceback (most recent call last):")
    assert lines[-2] == ("job", "ERROR", "ValueError: bad") and lines[-1] == ("worker", "INFO", "attempt 1 succeeded")
    assert not any("not kept" in line for _, _, line in lines)
    ids = [line.id for line in stored(engine, job_id)]
    assert ids == sorted(ids)


def test_the_capture_writes_in_batches_from_its_own_thread_never_the_jobs(sqlite_engine: Engine,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    engine = sqlite_engine
    job_id = new_job(engine)
    writes: list[tuple[str, int]] = []
    add = job_logs.add_lines

    def recorded(connection: Any, job_id: str, attempt: int, lines: Any) -> None:
        lines = list(lines)
        if lines:
            writes.append((threading.current_thread().name, len(lines)))
        add(connection, job_id, attempt, lines)

    monkeypatch.setattr(job_logs, "add_lines", recorded)
    log = open_log(engine, job_id, interval=0.01)
    with log.capturing():
        for step in range(2000):
            job.info("step %d", step)
            if step == 1000:  # until the flusher's first batch is stored
                deadline = time.monotonic() + 10
                while not writes and time.monotonic() < deadline:
                    time.sleep(0.01)
    while_running = len(writes)
    end(engine, log)
    assert while_running and all(name == "job-log" for name, _ in writes[:while_running])
    assert all(name == "MainThread" for name, _ in writes[while_running:])  # the end's, in the outcome's write
    assert sum(size for _, size in writes) == 2001 and len(writes) < 10
    assert [line.line for line in stored(engine, job_id)][:-1] == [f"step {step}" for step in range(2000)]


def test_past_the_cap_lines_are_counted_in_one_line_kept_up_to_date(sqlite_engine: Engine,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    engine = sqlite_engine
    monkeypatch.setattr(job_log, "MAX_LINES", 5)
    job_id = new_job(engine)
    log = open_log(engine, job_id)
    with log.capturing():
        for step in range(8):
            job.info("first %d", step)
    end(engine, log, "attempt 1 failed")
    log = open_log(engine, job_id, attempt=2)
    log.event("attempt 2 started")  # the worker's lines are never capped
    with log.capturing():
        job.info("second")
    end(engine, log, "attempt 2 succeeded")
    assert [line.line for line in stored(engine, job_id)] == [
        *(f"first {step}" for step in range(5)), "attempt 1 failed", "attempt 2 started", "… 4 lines dropped",
        "attempt 2 succeeded"]


def test_the_byte_cap_holds_however_long_the_lines(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    job_id = new_job(engine)
    log = open_log(engine, job_id)
    with log.capturing():
        for _ in range(200):
            job.info("x" * 100_000)  # each cut to MAX_LINE_CHARS
    end(engine, log)
    lines = stored(engine, job_id)
    kept = [line for line in lines if line.source == "job"]
    line_bytes = job_log.MAX_LINE_CHARS - 1 + len("…".encode())
    assert len(kept) == job_log.MAX_BYTES // line_bytes and {len(line.line) for line in kept} == {8192}
    assert [line.line for line in lines[-2:]] == [f"… {200 - len(kept)} lines dropped", "attempt 1 succeeded"]


def test_a_write_whose_commit_reply_was_lost_is_stored_once(database_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    from mlpq.worker import execute

    engine = make_engine(database_url)
    job_id = new_job(engine)
    lost = iter([OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))] * 2)
    commit = engine.dialect.do_commit

    def reply_lost(dbapi_connection: Any) -> None:  # the commit goes through; the client never hears so
        commit(dbapi_connection)
        error = next(lost, None)
        if error is not None:
            raise error

    monkeypatch.setattr(execute.time, "sleep", lambda _: None)
    log = open_log(engine, job_id)
    log.add("job", "INFO", "one")
    monkeypatch.setattr(engine.dialect, "do_commit", reply_lost)
    log.flush()  # committed, "failed", tried again: found stored
    log.add("job", "INFO", "two")

    def finish() -> None:
        with engine.begin() as connection:
            log.write_end(connection, "attempt 1 succeeded")

    with_db_retries(finish)  # the same for the end, in the transaction of the outcome
    assert next(lost, None) is None
    assert [line.line for line in stored(engine, job_id)] == ["one", "two", "attempt 1 succeeded"]
    engine.dispose()


def test_a_worker_at_warning_still_keeps_the_jobs_info_and_prints_no_more(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    root = logging.getLogger()
    printed: list[str] = []

    class Console(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            printed.append(record.getMessage())

    console, level = Console(), root.level
    root.addHandler(console)
    root.setLevel(logging.WARNING)
    try:
        job_id = new_job(engine)
        log = open_log(engine, job_id)
        with log.capturing():
            job.info("kept, not printed")
            job.warning("kept and printed")
        end(engine, log)
        assert root.level == logging.WARNING
    finally:
        root.removeHandler(console)
        root.setLevel(level)
    assert printed == ["kept and printed"]
    assert [line.line for line in stored(engine, job_id)][:2] == ["kept, not printed", "kept and printed"]


def test_execute_job_keeps_the_worker_events_and_what_the_job_logged(sqlite_engine: Engine, tmp_path: Path) -> None:
    engine = sqlite_engine
    with fault_kind.visible_here():
        with engine.begin() as connection:
            job_id = jobs.create_job(connection, "fault", {"action": "log", "lines": 2, "message": "hello"}, "cpu",
                                     timeout_s=60).id
        execute_job(engine, job_id, device=Device("cpu"), worker_host="test-host", data_dir=tmp_path,
                    leases=LeaseKeeper(engine, 0.2))
        with engine.begin() as connection:
            failing = jobs.create_job(connection, "fault", {"action": "raise", "message": "boom"}, "cpu",
                                      timeout_s=60).id
        execute_job(engine, failing, device=Device("cpu"), worker_host="test-host", data_dir=tmp_path,
                    leases=LeaseKeeper(engine, 0.2))
    lines = texts(stored(engine, job_id))
    assert lines[:5] == [("worker", "INFO", "received by test-host"),
                         ("worker", "INFO", "attempt 1 started on test-host (cpu)"),
                         ("job", "INFO", "hello 0"), ("job", "INFO", "hello 1"), ("stdout", "INFO", "hello on stdout")]
    assert lines[5][:2] == ("job", "WARNING") and "UserWarning: hello" in lines[5][2]
    assert lines[-1] == ("worker", "INFO", "attempt 1 succeeded")
    assert texts(stored(engine, failing))[-1] == ("worker", "ERROR", "attempt 1 failed: RuntimeError: boom")


def test_an_attempt_that_lost_its_lease_ends_its_log_saying_so(sqlite_engine: Engine, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import update

    from mlpq.db.schema import JOBS

    engine = sqlite_engine
    gate = fault_kind.Gate(tmp_path)
    with fault_kind.visible_here():
        with engine.begin() as connection:
            job_id = jobs.create_job(connection, "fault", gate.params(), "cpu", timeout_s=60).id
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(execute_job, engine, job_id, device=Device("cpu"), worker_host="test-host",
                                  data_dir=tmp_path, leases=LeaseKeeper(engine, 0.2))
            deadline = time.monotonic() + 30
            while gate.pid() is None:
                assert time.monotonic() < deadline and not running.done(), "the job did not reach the gate"
                time.sleep(0.02)
            with engine.begin() as connection:  # as the reaper does: requeued, then taken by another worker
                connection.execute(update(JOBS).where(JOBS.c.id == job_id).values(attempts=JOBS.c.attempts + 1))
            assert running.result(timeout=20) is None
    lines = texts(stored(engine, job_id, attempt=1))
    assert ("job", "INFO", f"blocking until {gate.release} exists") in lines
    assert lines[-1] == ("worker", "WARNING", "attempt 1 lost its lease (requeued, ended or gone): stopped")

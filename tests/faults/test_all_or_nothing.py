"""A submit is all or nothing: interrupted at any instant, or with its broker failing part-way, while two live
workers take its messages, either none of its jobs ever runs and the CLI says so, or every one runs and the CLI
printed the sweep id. The same for ``rerun`` and for ``Client.submit_many``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from mlpq.api_cli.api import BrokerUnavailableError, JobRequest
from mlpq.api_cli.batches import SubmitInterrupted
from mlpq.db.engine import make_engine
from mlpq.db.records import JobRecord
from mlpq.db.schema import JOBS
from mlpq.db.status import JobStatus
from tests.faults import helpers
from tests.faults.private_services import PrivateRedis
from tests.services import WorkerProcess, mlpq_command, run_mlpq

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

SWEEP_SIZE = 1000
SEEDS = ",".join(str(seed) for seed in range(3000, 3000 + SWEEP_SIZE))
SUBMIT = ("submit", "himmelblau", "--steps", "10", "--seed", SEEDS)
INSTANTS = 20
SWEEP_LINE = re.compile(rf"^sweep ([0-9a-f]{{32}}): {SWEEP_SIZE} jobs ", re.MULTILINE)
NONE_RUN = f"none of the {SWEEP_SIZE} jobs will run"
RUN_ALL_TIMEOUT_S = 600


@dataclass(frozen=True)
class Trial:
    """What one interrupted (or failed) submit printed, and the jobs it left in the ledger."""

    code: int
    output: str
    new_jobs: list[JobRecord]


def all_jobs(env: Mapping[str, str]) -> dict[str, JobRecord]:
    engine = make_engine(env["MLPQ_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return {row.id: JobRecord.from_row(row) for row in connection.execute(select(JOBS))}
    finally:
        engine.dispose()


def never_ran(job: JobRecord) -> bool:
    return job.status is JobStatus.CANCELLED and job.started_at is None and job.attempts == 0


def check_none_ran(trial: Trial) -> None:
    """The CLI said none runs: the submit left no job that ever ran or ever can."""
    assert all(never_ran(job) for job in trial.new_jobs), trial.output


def check_all_released(trial: Trial, sweep_id: str) -> set[str]:
    """The CLI printed the sweep id: every member exists, released; returns their ids (to see them run)."""
    members = [job for job in trial.new_jobs if job.sweep_id == sweep_id]
    assert len(members) == SWEEP_SIZE and len(trial.new_jobs) == SWEEP_SIZE, trial.output
    assert JobStatus.SUBMITTING not in {job.status for job in members}
    return {job.id for job in members}


def check_all_ran(env: Mapping[str, str], members: set[str]) -> None:
    """Every one of ``members`` runs to its end and succeeds."""
    def ended() -> list[JobRecord] | None:
        found = [job for job in all_jobs(env).values() if job.id in members]
        return found if all(job.status.terminal for job in found) else None

    finished = helpers.eventually(ended, RUN_ALL_TIMEOUT_S, "every job of the sweeps to end", interval=1)
    assert len(finished) == len(members) and {job.status for job in finished} == {JobStatus.SUCCEEDED}


def judge(trial: Trial) -> set[str]:
    """Check the trial against what its CLI printed: the jobs that must all run (none if it said none)."""
    printed = SWEEP_LINE.search(trial.output)
    if printed:
        return check_all_released(trial, printed.group(1))
    said_none = NONE_RUN in trial.output or trial.output.strip() == "Error: aborted"
    assert said_none and trial.code != 0, f"the CLI said neither all nor none (exit {trial.code}):\n{trial.output}"
    check_none_ran(trial)
    return set()


def interrupted_submit(env: Mapping[str, str], after_s: float | None, *args: str) -> Trial:
    """Run ``mlpq ARGS``, send it SIGINT ``after_s`` seconds after it started (never, for ``None``)."""
    before = set(all_jobs(env))
    process = subprocess.Popen(mlpq_command(*args), env=dict(env), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    if after_s is not None:
        try:
            process.wait(after_s)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=300)
    new = [job for job_id, job in all_jobs(env).items() if job_id not in before]
    return Trial(process.returncode, output, new)


@pytest.fixture
def two_workers(service_env: dict[str, str], tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    workers = [helpers.new_worker(service_env, tmp_path / f"worker-{name}.log", "--hostname", name)
               for name in ("a", "b")]
    yield workers
    for worker in workers:
        worker.stop()


def test_a_sweep_interrupted_at_any_instant_runs_all_or_nothing(service_env: dict[str, str],
                                                               two_workers: list[WorkerProcess]) -> None:
    began = time.monotonic()
    whole = interrupted_submit(service_env, None, *SUBMIT)
    duration = time.monotonic() - began
    assert whole.code == 0
    must_run = judge(whole)

    outcomes = []
    for index in range(INSTANTS):  # from a fifth of the way in (the CLI has started) to just past the end
        after_s = duration * (0.2 + 0.9 * index / INSTANTS)
        trial = interrupted_submit(service_env, after_s, *SUBMIT)
        released = judge(trial)
        must_run |= released
        outcomes.append((round(after_s, 2), "all" if released else "none", trial.output.strip().splitlines()[-1]))
    print("\n".join(f"SIGINT after {at} s: {what} ({last})" for at, what, last in outcomes))
    check_all_ran(service_env, must_run)  # the workers ran the released sweeps meanwhile
    assert all(worker.process.poll() is None for worker in two_workers)


@pytest.mark.parametrize("room_for", [0, 120, 600])
def test_a_sweep_whose_broker_fills_up_part_way_runs_nothing(room_for: int, private_redis: PrivateRedis,
                                                            service_env: dict[str, str], tmp_path: Path) -> None:
    env = {**service_env, "MLPQ_BROKER_URL": private_redis.url}
    workers = [helpers.new_worker(env, tmp_path / f"worker-{name}.log", "--hostname", name) for name in "ab"]
    try:
        control = redis.Redis(port=private_redis.port)
        message_bytes = 1_200  # about one task message in a Redis list
        control.config_set("maxmemory-policy", "noeviction")
        control.config_set("maxmemory", control.info("memory")["used_memory"] + room_for * message_bytes)
        trial = interrupted_submit(env, None, *SUBMIT)
    finally:
        control.config_set("maxmemory", 0)
        for worker in workers:
            worker.stop()
    assert trial.code == 1 and NONE_RUN in trial.output and len(trial.output.strip().splitlines()) == 1
    assert judge(trial) == set()


def test_a_rerun_interrupted_at_any_instant_runs_or_not_as_it_said(service_env: dict[str, str],
                                                                   two_workers: list[WorkerProcess]) -> None:
    original = helpers.submit(service_env, "himmelblau", steps=10)
    assert helpers.finished(service_env, original).status is JobStatus.SUCCEEDED
    began = time.monotonic()
    whole = interrupted_submit(service_env, None, "rerun", original)
    duration = time.monotonic() - began
    outcomes = [rerun_outcome(service_env, whole)]
    for index in range(10):
        outcomes.append(rerun_outcome(service_env, interrupted_submit(
            service_env, duration * (0.3 + 0.8 * index / 10), "rerun", original)))
    assert outcomes[0] == "runs"
    print(outcomes)


def rerun_outcome(env: Mapping[str, str], trial: Trial) -> str:
    if re.search(r"^[0-9a-f]{32} queued .*, a rerun of ", trial.output, re.MULTILINE):
        [job] = trial.new_jobs
        assert helpers.finished(env, job.id).status is JobStatus.SUCCEEDED
        return "runs"
    assert "the job will not run" in trial.output or trial.output.strip() == "Error: aborted", trial.output
    assert trial.code != 0 and all(never_ran(job) for job in trial.new_jobs)
    return "withdrawn"


def test_a_rerun_with_the_broker_down_runs_nothing(service_env: dict[str, str]) -> None:
    original = helpers.submit(service_env, "himmelblau", steps=10)
    env = {**service_env, "MLPQ_BROKER_URL": "redis://127.0.0.1:1/0"}
    before = set(all_jobs(env))
    result = run_mlpq("rerun", original, env=env)
    assert result.returncode == 1 and result.stderr.strip().endswith("the job will not run")
    assert set(all_jobs(env)) == before


def test_submit_many_interrupted_in_process_runs_all_or_nothing(service_env: dict[str, str],
                                                                two_workers: list[WorkerProcess]) -> None:
    assert threading.current_thread() is threading.main_thread()  # where Python delivers SIGINT
    api = helpers.client(service_env)
    requests = [JobRequest("himmelblau", {"steps": 10, "seed": seed}, "cpu") for seed in range(200)]
    began = time.monotonic()
    api.submit_many(requests, sweep_id=None)
    duration = time.monotonic() - began
    outcomes = []
    for index in range(INSTANTS):
        before = set(all_jobs(service_env))
        timer = threading.Timer(duration * (0.05 + index / INSTANTS), os.kill, (os.getpid(), signal.SIGINT))
        created = None
        timer.start()
        try:
            created = api.submit_many(requests, sweep_id=None)
            timer.join()  # a SIGINT after the return lands here
        except SubmitInterrupted as exc:
            assert "none of the 200 jobs will run" in str(exc)
        except KeyboardInterrupt:  # after submit_many returned (the assignment may not have happened yet)
            pass
        finally:
            timer.cancel()
        new = [job for job_id, job in all_jobs(service_env).items() if job_id not in before]
        if created is None and any(job.status is not JobStatus.CANCELLED for job in new):
            created = new  # the Ctrl-C landed between submit_many's return and the assignment
        if created is None:
            assert all(never_ran(job) for job in new)
            outcomes.append("none")
        else:
            assert sorted(job.id for job in new) == sorted(job.id for job in created)
            for job in created:
                assert helpers.finished(service_env, job.id).status is JobStatus.SUCCEEDED
            outcomes.append("all")
    print(outcomes)
    assert "none" in outcomes


def test_submit_many_with_the_broker_down_raises_and_leaves_nothing(service_env: dict[str, str]) -> None:
    env = {**service_env, "MLPQ_BROKER_URL": "redis://127.0.0.1:1/0"}
    before = set(all_jobs(env))
    with pytest.raises(BrokerUnavailableError, match="none of the 3 jobs will run$"):
        helpers.client(env).submit_many([JobRequest("himmelblau", {"seed": seed}, "cpu") for seed in range(3)])
    assert set(all_jobs(env)) == before

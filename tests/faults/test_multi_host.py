"""Several hosts, simulated on this one: three workers with their own host names, one Redis and one
PostgreSQL over TCP on 127.0.0.1, jobs spread over a pool and the pool-less queue, one host killed.

Host a and host b form pool ``lab``; host c serves jobs submitted without a pool. In the ``skewed``
case host b runs under libfaketime, its clock five minutes behind. Host a is killed (its whole process
group) while it runs a job, which must then finish on host b.

The skewed case holds because leases are stamped and compared by the database's clock (issue 11
item 2): with each host's own clock the other hosts saw host b's heartbeats as five minutes old and
requeued its live jobs.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from mlpq.api_cli.api import JobRequest
from mlpq.db.records import JobRecord
from mlpq.db.status import JobStatus
from tests.faults.helpers import client, eventually, kill_worker
from tests.services import WorkerProcess, start_worker

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
LEASES = {"MLPQ_LEASE_SECONDS": "6", "MLPQ_HEARTBEAT_SECONDS": "0.5", "MLPQ_MAINTENANCE_SECONDS": "1"}
HOSTS = {"host-a": "lab", "host-b": "lab", "host-c": None}
POOL_HOSTS = {"lab": {"host-a", "host-b"}, None: {"host-c"}}
JOBS = 60
LONG_STEPS = 300_000


def skewed(env: Mapping[str, str], offset: str) -> dict[str, str]:
    """``env`` for a process whose clock is off by ``offset`` (libfaketime, e.g. ``-5m``)."""
    if not LIBFAKETIME.exists():
        pytest.fail(f"{LIBFAKETIME} is missing: apt-get install libfaketime (scripts/services.sh)", pytrace=False)
    return {**env, "LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": offset, "FAKETIME_DONT_RESET": "1",
            # libfaketime's monotonic clock breaks Python's timed waits (Event.wait, the GIL's switch interval)
            "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_FORCE_MONOTONIC_FIX": "0"}


@pytest.fixture
def cluster_env(broker_url: str, postgresql_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "MLPQ_BROKER_URL": broker_url, "MLPQ_DATABASE_URL": postgresql_url,
            "MLPQ_DATA_DIR": str(tmp_path / "data"), **LEASES}


@pytest.fixture(params=["steady", "skewed"])
def hosts(request: pytest.FixtureRequest, cluster_env: dict[str, str],
          tmp_path: Path) -> Iterator[dict[str, WorkerProcess]]:
    started: dict[str, WorkerProcess] = {}
    try:
        for host, pool in HOSTS.items():
            env = {**cluster_env, "MLPQ_HOSTNAME": host}
            if host == "host-b" and request.param == "skewed":
                env = skewed(env, "-5m")
            started[host] = start_worker(env, tmp_path / f"{host}.log", "--device", "cpu",
                                         *(["--pool", pool] if pool else []))
        yield started
    finally:
        for worker in started.values():
            worker.stop()


def requests() -> list[JobRequest]:
    """Two thirds to pool ``lab``, a third to no pool: short Himmelblau runs, and first in ``lab`` two
    long ones (seconds each), so that host a is mid-job when it is killed."""
    made = []
    for n in range(JOBS):
        pool = None if n % 3 == 2 else "lab"
        steps = LONG_STEPS if n < 2 else 500  # one for each host of the pool to start with
        made.append(JobRequest("himmelblau", {"steps": steps, "log_every": max(1, steps // 10), "seed": n}, "cpu",
                               pool=pool))
    return made


def jobs_now(env: Mapping[str, str], ids: list[str]) -> list[JobRecord]:
    """The jobs as the ledger has them now, read in one query."""
    found = {job.id: job for job in client(env).list(limit=10 * JOBS)}
    return [found[job_id] for job_id in ids]


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_three_hosts_one_killed_every_job_ends_once_in_its_pool(hosts: dict[str, WorkerProcess],
                                                               cluster_env: dict[str, str]) -> None:
    listed = {w.host: w.pool for w in client(cluster_env).workers(timeout=3)}
    assert listed == HOSTS
    began = time.monotonic()
    ids = [job.id for job in client(cluster_env).submit_many(requests())]

    def running_on_a() -> JobRecord | None:
        return next((job for job in jobs_now(cluster_env, ids) if job.status is JobStatus.RUNNING
                     and job.worker_host == "host-a" and job.params["steps"] == LONG_STEPS), None)

    victim = eventually(running_on_a, 120, "host-a to run a long job", interval=0.1)
    kill_worker(hosts["host-a"])
    assert client(cluster_env).get(victim.id).job.status is JobStatus.RUNNING, "killed too late: the job had ended"
    def all_ended() -> list[JobRecord] | None:
        found = jobs_now(cluster_env, ids)
        return found if all(job.status.terminal for job in found) else None

    ended = eventually(all_ended, 480, "every job to end", interval=1)
    elapsed = time.monotonic() - began
    by_id = {job.id: job for job in ended}

    print(f"\n{JOBS} jobs in {elapsed:.1f}s; ran on {dict(Counter(job.worker_host for job in ended))}; "
          f"host-a killed while running {victim.id[:12]}, which ended {by_id[victim.id].status.value} "
          f"on {by_id[victim.id].worker_host} at attempt {by_id[victim.id].attempts}")
    assert Counter(job.status for job in ended) == {JobStatus.SUCCEEDED: JOBS}, [
        (job.id[:12], job.error) for job in ended if job.status is not JobStatus.SUCCEEDED]
    for job in ended:
        assert job.worker_host in POOL_HOSTS[job.pool], (job.id, job.pool, job.worker_host)
        assert 0 <= (job.duration_seconds or -1) < 120, (job.id, job.started_at, job.finished_at)
    # The killed host's job ran again elsewhere, as a second attempt; no other job ran twice.
    assert (by_id[victim.id].worker_host, by_id[victim.id].attempts) == ("host-b", 2)
    assert {job.id for job in ended if job.attempts != 1} == {victim.id}
    assert {host for host in ("host-b", "host-c") if hosts[host].process.poll() is None} == {"host-b", "host-c"}

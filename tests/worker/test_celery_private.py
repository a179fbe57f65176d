"""What ``mlpq.worker.celery_private`` relies on in Celery's libraries, checked on the installed versions.

Each test fails loudly when an upgrade of Celery, kombu or billiard removes or
moves what that module reaches for, before any worker silently stops replacing
its unhealthy processes.
"""

from __future__ import annotations

import inspect
import os
import tomllib
from importlib.metadata import version
from pathlib import Path

import billiard.pool
import pytest
from celery import Celery
from celery.worker import components
from packaging.requirements import Requirement

from mlpq.worker import celery_private

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
PINNED = ("celery", "kombu", "billiard")


def test_billiard_looks_mem_rss_up_as_a_global_of_its_pool_module_after_each_job() -> None:
    workloop = billiard.pool.Worker.workloop
    assert callable(billiard.pool.mem_rss) and not inspect.signature(billiard.pool.mem_rss).parameters
    assert workloop.__globals__ is vars(billiard.pool) and "mem_rss" in workloop.__code__.co_names
    source = inspect.getsource(workloop)
    sent, asked = source.index("put((READY,"), source.index("mem_rss()")
    assert sent < asked and "used_kb > max_memory_per_child" in source[asked:]


def test_celery_hands_worker_max_memory_per_child_to_the_pool() -> None:
    app = Celery(set_as_current=False)
    celery_private.allow_ending_processes(app)
    assert app.conf.worker_max_memory_per_child == celery_private.LIMIT_KIB
    assert "max_memory_per_child=w.max_memory_per_child" in inspect.getsource(components.Pool.create)
    assert "max_memory_per_child" in inspect.signature(billiard.pool.Pool).parameters


def end_after_second_job() -> None:
    jobs = iter(range(1))  # the question after the first job says keep, after the second end
    celery_private.end_after_job_when(lambda: next(jobs, None) is None)


def test_a_process_ends_after_the_job_its_question_says_so_and_the_job_counts() -> None:
    """billiard itself, without Celery: each job's result arrives, and the third job runs in a fresh process."""
    pool = billiard.pool.Pool(1, initializer=end_after_second_job, max_memory_per_child=celery_private.LIMIT_KIB)
    try:
        pids = [pool.apply_async(os.getpid).get(timeout=30) for _ in range(4)]
    finally:
        pool.terminate()
        pool.join()
    assert pids[0] == pids[1] != pids[2] == pids[3]


@pytest.mark.parametrize("name", PINNED)
def test_the_installed_version_is_in_the_tested_range_pyproject_pins(name: str) -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    [pin] = [Requirement(text) for text in dependencies if Requirement(text).name == name]
    assert pin.specifier and "<" in str(pin.specifier), f"{name} has no upper bound: {pin}"
    assert pin.specifier.contains(version(name)), f"{name} {version(name)} is outside the tested range {pin}"

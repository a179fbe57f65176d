"""The one place mlpq reaches past the public API of Celery's libraries, and what it relies on there.

A pool process must sometimes end after a job (see ``recycle``): after the job's
result has reached the parent, so the job is neither lost nor run again. Celery
offers that only for memory: with ``worker_max_memory_per_child`` set, billiard's
``Worker.workloop`` asks ``billiard.pool.mem_rss()`` (the process's peak RSS in
KiB) after each job and ends the process cleanly when it is above the limit.
Ending a process on purpose (``SystemExit``) counts as a lost worker and
requeues the job; a signal races with the next job. So the limit is set to
``LIMIT_KIB`` and ``mem_rss`` is replaced by a question that answers
``LIMIT_KIB`` to keep the process, more to end it.

This relies on: ``billiard.pool.mem_rss``, a module global called with no
argument; ``billiard.pool.Worker.workloop`` comparing it with
``max_memory_per_child`` after sending each job's result; Celery handing
``worker_max_memory_per_child`` to the pool. tests/worker/test_celery_private.py
checks each on the installed versions, and that they are in the ranges
pyproject.toml pins.
"""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

LIMIT_KIB = 1
"""The ``worker_max_memory_per_child`` given to billiard: ``mem_rss`` answers this to keep a process."""


def allow_ending_processes(app: Celery) -> None:
    """Make billiard ask, after each job, whether to end the pool process that ran it (see ``end_after_job_when``)."""
    app.conf.worker_max_memory_per_child = LIMIT_KIB


def end_after_job_when(should_end: Callable[[], bool]) -> None:
    """In a pool process: billiard ends it after each job for which ``should_end()`` is true.

    Needs ``allow_ending_processes`` on the worker's app.
    """
    import billiard.pool

    def mem_rss() -> int:
        return LIMIT_KIB + 1 if should_end() else LIMIT_KIB

    billiard.pool.mem_rss = mem_rss

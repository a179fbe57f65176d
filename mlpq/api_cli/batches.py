"""A submit is all or nothing: its jobs are created unclaimable, published, then released in one transaction.

1. One transaction inserts every job as ``submitting`` under a new batch id. A
   worker that takes the message of such a job waits for its release
   (``mlpq.worker.execute.claim``): it never runs an unreleased job.
2. The jobs' messages are published.
3. One transaction releases the whole batch (submitting → queued), or none of
   it if a member was cancelled or withdrawn meanwhile.

Whatever stops a submit before step 3 commits (Ctrl-C, a broker or database
failure, a crash) leaves its batch unreleased: the submit withdraws it (deletes
its jobs), or, if it cannot, a worker's maintenance withdraws it once the
submit has been silent for a lease (``jobs.withdraw_abandoned``: they end
``cancelled``). Ctrl-C is acted on only between steps, so a released batch is
never reported as stopped, nor an unreleased one as submitted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, NamedTuple

from mlpq import interrupts, messages
from mlpq.db import jobs
from mlpq.db.status import JobStatus
from mlpq.errors import MlpqError
from mlpq.redact import one_line

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from mlpq.db.records import JobRecord


ALIVE_EVERY_S = 1.0
"""How often a submit that is still publishing tells the ledger it is alive (``jobs.touch_batch``)."""


class NewJob(NamedTuple):
    """A validated job to create."""

    kind: str
    params: dict[str, Any]
    device: str
    pool: str | None
    timeout_s: int
    rerun_of: str | None


class SubmitInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a submit before it released its jobs: the message says what became of them."""


class SubmitAborted(MlpqError):
    """A failure stopped a submit before it released its jobs. ``fate`` says what became of them; ``stage`` is
    ``publish`` (the broker failed: see ``__cause__``) or ``release``."""

    def __init__(self, message: str, fate: str, stage: str) -> None:
        super().__init__(message)
        self.fate, self.stage = fate, stage


class BatchChanged(RuntimeError):
    """A member of the batch was cancelled or withdrawn before the release."""


def submit_batch(engine: Engine, broker_url: str, ledger: str, new: Sequence[NewJob], *, sweep_id: str | None,
                 grace_s: float) -> list[JobRecord]:
    """Create, publish and release ``new`` as one batch; the released jobs, in order.

    Ctrl-C is held throughout and acted on only between two steps (so it never
    lands inside a database or Redis call): before the release it raises
    ``SubmitInterrupted`` (none runs); after it, once the batch is released,
    ``KeyboardInterrupt`` (all run), unless the caller holds Ctrl-C itself. A
    failure after the jobs were created raises ``SubmitAborted``; a failure to
    create them is raised as it is.
    """
    with interrupts.held() as hold:
        released = create_publish_release(engine, broker_url, ledger, new, sweep_id, grace_s)
    if hold.interrupted and not interrupts.holding():
        raise KeyboardInterrupt
    return released


def create_publish_release(engine: Engine, broker_url: str, ledger: str, new: Sequence[NewJob],
                           sweep_id: str | None, grace_s: float) -> list[JobRecord]:
    """The three steps of ``submit_batch``, under its hold of Ctrl-C; withdraws the batch if they fail."""
    batch, stage, sent = jobs.new_job_id(), "create", []
    try:
        with engine.begin() as connection:
            created = [jobs.create_job(connection, job.kind, job.params, job.device, timeout_s=job.timeout_s,
                                       pool=job.pool, sweep_id=sweep_id, rerun_of=job.rerun_of, batch_id=batch)
                       for job in new]
        stage = "publish"
        publish(engine, broker_url, ledger, batch, created, sent, grace_s)
        interrupts.stop_if_interrupted()
        stage = "release"
        return release(engine, batch, [job.id for job in created])
    except BaseException as exc:
        settled = settle(engine, batch)
        if settled:  # the release committed although something failed after it: every job runs
            return settled
        fate = none_will_run(len(new), len(sent)) if settled is not None else (
            f"the ledger could not be reached to withdraw {them(len(new))}: none of them runs unless their release"
            " had committed (workers withdraw them within a lease otherwise)")
        if isinstance(exc, KeyboardInterrupt):
            raise SubmitInterrupted(f"interrupted: {fate}") from None
        if not isinstance(exc, Exception) or stage == "create":
            raise
        reason = one_line(str(exc).strip() or type(exc).__name__)
        raise SubmitAborted(f"{fate}: {reason}", fate, stage) from exc


def publish(engine: Engine, broker_url: str, ledger: str, batch: str, created: Sequence[JobRecord],
            sent: list[str], grace_s: float) -> None:
    """Publish each job's message, adding its id to ``sent``; stops between two if a Ctrl-C is being held.

    Every ``ALIVE_EVERY_S`` it tells the ledger the submit is alive, so that however long publishing takes,
    maintenance withdraws the batch only once its submit has been silent for a lease.
    """
    alive_at = time.monotonic()
    with messages.connect(broker_url) as broker:
        for job in created:
            interrupts.stop_if_interrupted()
            messages.publish(broker, ledger, [job], sent, grace_s=grace_s)
            if time.monotonic() - alive_at > ALIVE_EVERY_S:
                alive_at = time.monotonic()
                with suppress(Exception), engine.begin() as connection:  # best effort: the release checks
                    jobs.touch_batch(connection, batch)                 # that the batch is whole anyway


def release(engine: Engine, batch: str, ids: Sequence[str]) -> list[JobRecord]:
    """Release the whole batch in one transaction; ``BatchChanged`` (and nothing released) if it is not whole."""
    with engine.begin() as connection:
        released = {job.id: job for job in jobs.release_batch(connection, batch)}
        if len(released) != len(ids):
            raise BatchChanged(f"{len(ids) - len(released)} of them were cancelled or withdrawn meanwhile")
    return [released[job_id] for job_id in ids]


def settle(engine: Engine, batch: str) -> list[JobRecord] | None:
    """Withdraw what the batch left unreleased; its jobs if it had been released (else ``[]``), ``None`` if the
    ledger cannot be reached to tell."""
    try:
        with engine.begin() as connection:
            jobs.withdraw_batch(connection, batch)
            members = jobs.batch_jobs(connection, batch)
    except Exception:  # the database is away: the maintenance rule withdraws the batch a lease later
        return None
    return members if any(job.status is not JobStatus.CANCELLED for job in members) else []


def them(count: int) -> str:
    return "the job" if count == 1 else f"the {count} jobs"


def none_will_run(count: int, published: int) -> str:
    """What became of a withdrawn batch of ``count`` jobs, ``published`` of whose messages were sent."""
    fate = "the job will not run" if count == 1 else f"none of the {count} jobs will run"
    return f"{fate} ({published} had been published: workers skip them)" if published else fate

"""Tables: the ledger's identity, one row per job, one row per reported step or epoch.

SQLAlchemy Core tables, no ORM: every query is a Core statement whose rows are
copied into ``mlpq.db.records``, and no command pays for importing the ORM.
"""

from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Boolean, Column, Enum, ForeignKey, Index, Integer, LargeBinary, MetaData,
                        PrimaryKeyConstraint, String, Table, Text)

from mlpq.db.clock import UTCDateTime, db_now, db_row_time
from mlpq.db.status import JobStatus

metadata = MetaData()

LEDGER = Table(
    "ledger", metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False, default=db_now()),
)
"""One row, written by the migration that creates the schema: which ledger this is.

Queue names carry it, so a worker only takes its own ledger's jobs, and a
worker notices when its database was replaced (a new identity, or none).
"""

JOBS = Table(
    "jobs", metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False, index=True),
    Column("status", Enum(JobStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
           nullable=False, index=True),
    Column("device", String(16), nullable=False, index=True),
    Column("pool", String(32)),
    Column("params", JSON, nullable=False),
    Column("timeout_s", Integer, nullable=False),
    Column("sweep_id", String(32), index=True),
    Column("rerun_of", String(32)),
    Column("batch_id", String(32), index=True),
    Column("created_at", UTCDateTime, nullable=False, default=db_row_time(), index=True),
    Column("queued_at", UTCDateTime, nullable=False, default=db_now()),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("heartbeat_at", UTCDateTime),
    Column("worker_host", String(255)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("stop_as", String(16)),
    Column("result", JSON),
    Column("error", Text),
    Column("provenance", JSON),
)
"""One row per job. ``pool``: the pool of hosts that must run it (``None``: hosts outside any pool);
``rerun_of``: the job it repeats; ``batch_id``: the submit that created it, whose jobs
stay ``submitting`` (unclaimable) until that submit releases them all in one transaction; ``created_at``: when its row was written, by the database's clock and
distinct within a transaction (so newest first is the reverse of the order written, a sweep's too);
``queued_at``: when it last became queued, by the database's clock (the reconciler re-publishes jobs queued
long ago but absent from Redis); ``provenance``: versions, device, host and git commit of the run that
produced the result; ``stop_as``: the terminal status a stop request ends the job in (``pruned`` for a tuning
study's pruned trial; ``None``: ``cancelled``)."""

METRICS = Table(
    "metrics", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("step", Integer, nullable=False),
    Column("values", JSON, nullable=False),
    Index("uq_metrics_job_attempt_step", "job_id", "attempt", "step", unique=True),
)
"""What each step or epoch of an attempt reported; a step is stored once per attempt, however often a commit
is retried."""


ATTEMPTS = Table(
    "attempts", metadata,
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("worker_host", String(255)),
    Column("started_at", UTCDateTime, nullable=False, default=db_now()),
    Column("ended_at", UTCDateTime),
    Column("outcome", Text),
    Column("resumed_at_step", Integer),
    PrimaryKeyConstraint("job_id", "attempt"),
)
"""One row per attempt of a job: where it ran, how it ended (``succeeded``, ``worker lost``, ``lease lost``,
…; ``None`` while running) and the step a resumed attempt started from (``None``: from the beginning)."""

ARTIFACTS = Table(
    "artifacts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("role", String(16), nullable=False, default="artifact"),
    Column("name", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("store", String(16), nullable=False),
    Column("complete", Boolean, nullable=False, default=False),
    Column("meta", JSON),
    Column("created_at", UTCDateTime, nullable=False, default=db_now()),
    Index("uq_artifacts_job_role_name", "job_id", "role", "name", unique=True),
)
"""A file a job kept. ``role``: ``artifact`` (named by the job, listed and downloaded) or ``checkpoint`` (the
job's latest state, one per job, given back to a resumed attempt and removed when the job ends); ``store``:
``ledger`` (its bytes in ``artifact_chunks``) or ``directory`` (content-addressed under ``MLPQ_ARTIFACT_DIR``
by its SHA-256); ``complete``: false while its bytes are being written, and never listed so; ``meta``: what its
writer needs to trust it again (a checkpoint's spec digest)."""

ARTIFACT_CHUNKS = Table(
    "artifact_chunks", metadata,
    Column("artifact_id", Integer, ForeignKey("artifacts.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("artifact_id", "seq"),
)
"""The bytes of an artifact kept in the ledger, in order, a chunk a row (so neither writer nor reader holds a
large artifact whole; SQLite BLOB, PostgreSQL ``bytea``)."""

JOB_LOGS = Table(
    "job_logs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False, default=db_row_time()),
    Column("source", String(16), nullable=False),
    Column("level", String(16), nullable=False),
    Column("line", Text, nullable=False),
    Index("ix_job_logs_job_id_id", "job_id", "id"),
)
"""Each job's log, per attempt, in the order written: what the job logged or printed (``source`` ``job``, or
``stdout``/``stderr`` for a command) and what the worker said about it (``worker``), stamped by the database."""

"""Tables: the ledger's identity, one row per job, one row per reported step or epoch.

SQLAlchemy Core tables, no ORM: every query is a Core statement whose rows are
copied into ``mlpq.db.records``, and no command pays for importing the ORM.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Enum, ForeignKey, Index, Integer, MetaData, String, Table, Text

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
produced the result."""

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

"""The ledger's identity (queues are named by it), and one metric per (job, attempt, step).

Revision ID: 0004_i8ledger
Revises: 0003_i11cluster
Create Date: 2026-11-29
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0004_i8ledger"
down_revision = "0003_i11cluster"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ledger = op.create_table(
        "ledger",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(ledger.insert().values(id=uuid.uuid4().hex[:12], created_at=sa.func.now()))
    # A retried commit could have stored a step twice: keep the first copy, then forbid a second.
    op.execute("DELETE FROM metrics WHERE id NOT IN "
               "(SELECT keep FROM (SELECT MIN(id) AS keep FROM metrics GROUP BY job_id, attempt, step) AS firsts)")
    op.drop_index("ix_metrics_job_id", table_name="metrics")
    op.create_index("uq_metrics_job_attempt_step", "metrics", ["job_id", "attempt", "step"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_metrics_job_attempt_step", table_name="metrics")
    op.create_index("ix_metrics_job_id", "metrics", ["job_id"])
    op.drop_table("ledger")

"""jobs: the job queue's record

Every backend gets the ``jobs`` table (state, attempts, last error of each job: what
``/admin/jobs`` lists). It is the queue itself on both backends (``learnloop/jobs``). This
revision once also installed procrastinate's schema on PostgreSQL; procrastinate is gone (its
psycopg-pool dependency is LGPL) and ``0028_jobs_without_procrastinate`` drops that schema where
an earlier version installed it.

Revision ID: 0014_jobs
Revises: 0001_initial_schema
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_jobs"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=True),
        sa.Column("task", sa.String(80), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True, unique=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_jobs_state_run_at", "jobs", ["state", "run_at"])
    op.create_index("ix_jobs_org", "jobs", ["org_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_org", table_name="jobs")
    op.drop_index("ix_jobs_state_run_at", table_name="jobs")
    op.drop_table("jobs")

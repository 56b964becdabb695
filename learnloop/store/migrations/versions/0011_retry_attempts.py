"""retry attempts: a wrong code answer may be tried again within its presentation

The pending item counts the attempts made in its presentation; every attempt after the first
is kept in ``retry_attempts`` (the first is the presentation's response, the only one that
counts for mastery, knowledge tracing and item statistics).

Revision ID: 0011_retry_attempts
Revises: 0009_presentations
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_retry_attempts"
down_revision = "0009_presentations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pending_items", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "retry_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False, index=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("item_id", sa.String(80), nullable=False),
        sa.Column("presentation_id", sa.String(36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ux_retry_attempts_presentation",
        "retry_attempts",
        ["user_id", "presentation_id", "attempt"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_retry_attempts_presentation", table_name="retry_attempts")
    op.drop_table("retry_attempts")
    with op.batch_alter_table("pending_items") as batch:
        batch.drop_column("attempts")

"""xAPI outbox: statements waiting for (or delivered to) the organisation's LRS

``xapi_settings``: one LRS per organisation. ``xapi_outbox``: one row per statement, written in
the transaction of the event behind it, delivered (and retried with backoff) by
``services/xapi_outbox.deliver_pending``.

Revision ID: 0012_xapi_outbox
Revises: 0001_initial_schema
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_xapi_outbox"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "xapi_settings",
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("endpoint", sa.String(500), nullable=False),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("password", sa.String(500), nullable=False),
        sa.Column("actor_mode", sa.String(10), nullable=False),
        sa.Column("home_page", sa.String(500), nullable=False),
        sa.Column("id_namespace", sa.String(36), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "xapi_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False, index=True),
        sa.Column("statement_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("statement", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_xapi_outbox_due", "xapi_outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_xapi_outbox_due", table_name="xapi_outbox")
    op.drop_table("xapi_outbox")
    op.drop_table("xapi_settings")

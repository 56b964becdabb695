"""llm_quotas: monthly model quotas per user and per team of an organisation

Revision ID: 0021_llm_quotas
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_llm_quotas"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "llm_quotas",
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), primary_key=True),
        sa.Column("user_monthly_tokens", sa.Integer(), nullable=True),
        sa.Column("user_monthly_usd", sa.Float(), nullable=True),
        sa.Column("team_monthly_tokens", sa.Integer(), nullable=True),
        sa.Column("team_monthly_usd", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("llm_quotas")

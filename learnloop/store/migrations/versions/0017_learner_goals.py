"""learner_goals: a learner's weekly practice goal and whether their streak is shown

Revision ID: 0017_learner_goals
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_learner_goals"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learner_goals",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("weekly_answers", sa.Integer(), nullable=True),
        sa.Column("show_streak", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("learner_goals")

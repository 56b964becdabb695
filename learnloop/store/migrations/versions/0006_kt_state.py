"""knowledge tracing: per-learner model state, and the live model's P(correct) per skill

Revision ID: 0006_kt_state
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_kt_state"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kt_states",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("model_params_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("last_response_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.add_column("mastery", sa.Column("p_correct", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mastery") as batch:
        batch.drop_column("p_correct")
    op.drop_table("kt_states")

"""knowledge tracing: every skill's predicted success stored with the learner's state

The policy reads each skill's P(correct) on every next item. The state it comes from holds
the learner's recent answer times (the model's time windows) and runs to ~100 KB for a busy
learner; the predictions, computed when an answer is folded in, are a few hundred bytes.

Revision ID: 0008_kt_predictions
Revises: 0006_kt_state
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_kt_predictions"
down_revision = "0006_kt_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("kt_states", sa.Column("predictions", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kt_states") as batch:
        batch.drop_column("predictions")

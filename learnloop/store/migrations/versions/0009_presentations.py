"""presentations: every item shown to a learner has an id, and is answered at most once

The pending item carries the id of its presentation; the response stores the id it answered,
unique per learner, so two copies of one answer (a double click, a retry, two tabs) store one
response, whatever process serves them. Answers without a presentation (skill checks, rows
logged before this revision) keep NULL, which the unique index does not compare.

Revision ID: 0009_presentations
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_presentations"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "pending_items", sa.Column("presentation_id", sa.String(36), nullable=False, server_default="")
    )
    # items already on screen get an id of their own (one pending item per learner)
    op.execute("UPDATE pending_items SET presentation_id = 'before-0009-' || CAST(user_id AS VARCHAR(20))")
    op.add_column("responses", sa.Column("presentation_id", sa.String(36), nullable=True))
    op.create_index(
        "ux_responses_user_presentation", "responses", ["user_id", "presentation_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ux_responses_user_presentation", table_name="responses")
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("presentation_id")
    with op.batch_alter_table("pending_items") as batch:
        batch.drop_column("presentation_id")

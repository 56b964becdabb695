"""mastery: the evidence behind each learner's skill, stored with it

A role target is met only with enough evidence (``science/evidence.py``): distinct items and
kinds answered right, evidence against guessing, a recent right answer. It was folded from the
learner's whole log on every read (every next item, every team report). It is now kept on the
``mastery`` row, updated in the answer's transaction and rebuilt with mastery
(``services/mastery.py``): ``evidence`` (the versioned fold) and its summary columns.

Rows written before hold NULL: they are folded from the log when read, and stored at the
skill's next answer or by ``learnloop rebuild``.

Revision ID: 0034_stored_evidence
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0034_stored_evidence"
down_revision = "0001"
branch_labels = None
depends_on = "0006_kt_state"


def upgrade() -> None:
    with op.batch_alter_table("mastery") as batch:
        batch.add_column(sa.Column("evidence", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("ev_items", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("ev_open", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("ev_cusum", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("ev_last_right", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mastery") as batch:
        for column in ("ev_last_right", "ev_cusum", "ev_open", "ev_items", "evidence"):
            batch.drop_column(column)

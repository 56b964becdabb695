"""mastery: the team dashboards' covering index holds the evidence summary too

A team report reads every member's P(known) and the evidence summary a target needs (0034:
distinct items, an open kind right, the CUSUM, the newest right answer). The index on
(user_id, skill_id, p_known) covered the first; the summary was read from the table rows,
which also hold the evidence JSON, so reading it cost more than the rest of the report. The
index now covers both (it replaces the narrower one: the same lookups, one index to update
per answer).

Revision ID: 0043_mastery_summary_index
Revises: 0001
"""

from alembic import op

revision = "0043_mastery_summary_index"
down_revision = "0001"
branch_labels = None
depends_on = ("0004_reports", "0034_stored_evidence")  # the index it replaces; the columns

COLUMNS = ["user_id", "skill_id", "p_known", "attempts", "ev_items", "ev_open", "ev_cusum", "ev_last_right"]


def upgrade() -> None:
    op.create_index("ix_mastery_user_skill_summary", "mastery", COLUMNS, unique=False)
    op.drop_index("ix_mastery_user_skill_p_known", table_name="mastery")


def downgrade() -> None:
    op.create_index(
        "ix_mastery_user_skill_p_known", "mastery", ["user_id", "skill_id", "p_known"], unique=False
    )
    op.drop_index("ix_mastery_user_skill_summary", table_name="mastery")

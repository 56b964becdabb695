"""learner_tallies: what backs a learner's standing, counted as answers arrive

The team report's readiness lists show, per person, the answers given in practice and the
distinct items answered right. They were two GROUP BY counts over the organisation's whole
response log on every report (most of its time at 10,000 learners). They are now one row per
learner, added to in the answer's transaction and rebuilt from the log with mastery
(``services/learner_tally.py``). This fills the rows of an existing log once, counted the way
the rebuild counts them (the instructors' grade decisions applied), and adds the index the
answer path uses to tell whether an item was answered right before.

Revision ID: 0042_learner_tallies
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0042_learner_tallies"
down_revision = "0001"
branch_labels = None
depends_on = "0002_llm"  # grade_reviews


def upgrade() -> None:
    op.create_table(
        "learner_tallies",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("practice_answers", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("right_items", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_index("ix_responses_user_item", "responses", ["user_id", "item_id"], unique=False)
    responses = sa.table(
        "responses",
        sa.column("id", sa.Integer()),
        sa.column("user_id", sa.Integer()),
        sa.column("item_id", sa.String()),
        sa.column("context", sa.String()),
        sa.column("correct", sa.Boolean()),
    )
    reviews = sa.table(
        "grade_reviews",
        sa.column("response_id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("decided_correct", sa.Boolean()),
    )
    tallies = sa.table(
        "learner_tallies",
        sa.column("user_id", sa.Integer()),
        sa.column("practice_answers", sa.Integer()),
        sa.column("right_items", sa.Integer()),
    )
    counted_right = sa.func.coalesce(reviews.c.decided_correct, responses.c.correct).is_(True)
    counts = (
        sa.select(
            responses.c.user_id,
            sa.func.sum(sa.case((responses.c.context == "practice", 1), else_=0)),
            sa.func.count(sa.distinct(sa.case((counted_right, responses.c.item_id)))),
        )
        .select_from(
            responses.outerjoin(
                reviews,
                sa.and_(reviews.c.response_id == responses.c.id, reviews.c.status == "decided"),
            )
        )
        .group_by(responses.c.user_id)
    )
    op.execute(tallies.insert().from_select(["user_id", "practice_answers", "right_items"], counts))


def downgrade() -> None:
    op.drop_index("ix_responses_user_item", table_name="responses")
    op.drop_table("learner_tallies")

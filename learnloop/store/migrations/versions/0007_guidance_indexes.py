"""guidance: one learner's instructor decisions by index

Every next item after an answer folds it into its review card with the instructors'
decisions on the learner's answers applied; without this index that read scans every
grade review of every organisation.

Revision ID: 0007_guidance_indexes
Revises: 0001
"""

from alembic import op

revision = "0007_guidance_indexes"
down_revision = "0001"
branch_labels = None
depends_on = "0002_llm"  # grade_reviews


def upgrade() -> None:
    with op.batch_alter_table("grade_reviews", schema=None) as batch_op:
        batch_op.create_index("ix_grade_reviews_user_status", ["user_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("grade_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_grade_reviews_user_status")

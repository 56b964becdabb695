"""second_review: an organisation may require a second reviewer before a draft is published

``org_authoring_policies`` holds the organisation's rule; ``item_drafts.edited_by`` is who saved
the current version's edits (the writer the approver must differ from).

Revision ID: 0025_second_review
Revises: 0002_llm
"""

import sqlalchemy as sa
from alembic import op

revision = "0025_second_review"
down_revision = "0002_llm"  # item_drafts
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_authoring_policies",
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), primary_key=True),
        sa.Column("second_review", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("item_drafts") as batch:
        batch.add_column(sa.Column("edited_by", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_item_drafts_edited_by", "users", ["edited_by"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("item_drafts") as batch:
        batch.drop_constraint("fk_item_drafts_edited_by", type_="foreignkey")
        batch.drop_column("edited_by")
    op.drop_table("org_authoring_policies")

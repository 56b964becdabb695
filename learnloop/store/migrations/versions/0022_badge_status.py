"""Open Badges: Bitstring Status List indexes and per-organisation badge settings

Revision ID: 0022_badge_status
Revises: 0018_badges
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_badge_status"
down_revision = "0018_badges"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("badge_credentials") as batch:
        batch.add_column(sa.Column("status_index", sa.Integer(), nullable=True))
        batch.create_unique_constraint("ux_badge_credentials_org_status", ["org_id", "status_index"])
    op.create_table(
        "badge_settings",
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), primary_key=True),
        sa.Column("skill_badges", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("badge_settings")
    with op.batch_alter_table("badge_credentials") as batch:
        batch.drop_constraint("ux_badge_credentials_org_status", type_="unique")
        batch.drop_column("status_index")

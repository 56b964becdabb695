"""Open Badges 3.0: per-organisation issuer keys and issued credentials

Revision ID: 0018_badges
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_badges"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "badge_issuer_keys",
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), primary_key=True),
        sa.Column("private_multibase", sa.String(200), nullable=False),
        sa.Column("did", sa.String(200), nullable=False),
        sa.Column("subject_namespace", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "badge_credentials",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False, index=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("role_id", sa.String(100), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("revocation_reason", sa.String(500), nullable=True),
        sa.UniqueConstraint("user_id", "role_id", name="ux_badge_credentials_user_role"),
    )


def downgrade() -> None:
    op.drop_table("badge_credentials")
    op.drop_table("badge_issuer_keys")

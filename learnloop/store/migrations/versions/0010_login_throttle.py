"""login throttle: failed-login counters per account and per client address

Every worker process reads and bumps the same counters, so the limits hold however many
processes serve the site. Keys are hashes of the e-mail address or client address.

Revision ID: 0010_login_throttle
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_login_throttle"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")

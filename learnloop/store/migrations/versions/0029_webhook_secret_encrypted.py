"""webhook secrets encrypted at rest: room for the Fernet token in ``webhook_endpoints.secret``

The column held the ``whsec_`` secret itself; it now holds ``fernet:`` and a Fernet token of it
(``services/people/webhooks.py``, keyed from the settings). The key is not known here, so rows
written before are encrypted by the application: on their next delivery or by the
``webhook.sweep`` job (every five minutes). SQLite does not enforce a VARCHAR length.

Revision ID: 0029_webhook_secret_encrypted
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0029_webhook_secret_encrypted"
down_revision = "0001"
branch_labels = None
depends_on = "0020_webhooks"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "webhook_endpoints",
            "secret",
            type_=sa.String(400),
            existing_type=sa.String(100),
            existing_nullable=False,
        )


def downgrade() -> None:
    pass  # a longer column holds the shorter values; nothing to undo

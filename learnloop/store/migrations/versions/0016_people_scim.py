"""people_scim: what SCIM provisioning stores with members and teams

A provisioning client (Okta, Entra ID, ...) names a person by ``userName`` (unique in the
organisation) and sends more attributes than Learnloop uses; the last document it wrote is kept
(``scim_document``) and served back, with Learnloop's own state (active, team, manager) laid
over it. Teams keep the group's ``externalId`` and document the same way.

Revision ID: 0016_people_scim
Revises: 0013_people
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_people_scim"
down_revision = "0013_people"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("scim_user_name", sa.String(300), nullable=True))
    op.add_column("users", sa.Column("scim_document", sa.JSON(), nullable=True))
    op.create_index("ux_users_org_scim_user_name", "users", ["org_id", "scim_user_name"], unique=True)
    op.add_column("teams", sa.Column("external_id", sa.String(200), nullable=True))
    op.add_column("teams", sa.Column("scim_document", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_index("ux_users_org_scim_user_name", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("scim_document")
        batch.drop_column("scim_user_name")
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("scim_document")
        batch.drop_column("external_id")

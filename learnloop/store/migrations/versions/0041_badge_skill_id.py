"""badges: a skill credential names its skill in its own column

A skill credential's achievement was kept in ``role_id`` as ``skill:<skill id>``. It now has
``skill_id`` (nullable, as ``role_id`` becomes): a role credential sets ``role_id``, a skill
credential ``skill_id``, never both and never neither (a check constraint), one per learner and
skill (a unique constraint, as ``(user_id, role_id)`` for roles). Existing ``skill:`` rows are
moved over; their signed documents are unchanged (the achievement's id and image in them never
depended on the column). Downgrade puts the ``skill:`` form back.

Revision ID: 0041_badge_skill_id
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0041_badge_skill_id"
down_revision = "0001"
branch_labels = None
depends_on = "0022_badge_status"

PREFIX = "skill:"


def upgrade() -> None:
    with op.batch_alter_table("badge_credentials") as batch:
        batch.add_column(sa.Column("skill_id", sa.String(100), nullable=True))
        batch.alter_column("role_id", existing_type=sa.String(100), nullable=True)
    op.execute(
        sa.text(
            "UPDATE badge_credentials SET skill_id = substr(role_id, :start), role_id = NULL "
            "WHERE substr(role_id, 1, :length) = :prefix"
        ).bindparams(start=len(PREFIX) + 1, length=len(PREFIX), prefix=PREFIX)
    )
    with op.batch_alter_table("badge_credentials") as batch:
        batch.create_unique_constraint("ux_badge_credentials_user_skill", ["user_id", "skill_id"])
        batch.create_check_constraint(
            "ck_badge_credentials_role_or_skill", "(role_id IS NULL) <> (skill_id IS NULL)"
        )


def downgrade() -> None:
    with op.batch_alter_table("badge_credentials") as batch:
        batch.drop_constraint("ck_badge_credentials_role_or_skill", type_="check")
        batch.drop_constraint("ux_badge_credentials_user_skill", type_="unique")
    op.execute(
        sa.text(
            "UPDATE badge_credentials SET role_id = :prefix || skill_id, skill_id = NULL "
            "WHERE skill_id IS NOT NULL"
        ).bindparams(prefix=PREFIX)
    )
    with op.batch_alter_table("badge_credentials") as batch:
        batch.alter_column("role_id", existing_type=sa.String(100), nullable=False)
        batch.drop_column("skill_id")

"""reports: weekly gap snapshots and indexes for the dashboards

Revision ID: 0004_reports
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_reports"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_weeks",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("org_id", "week_start"),
    )
    op.create_table(
        "skill_gap_weekly",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("role_id", sa.String(length=80), nullable=False),
        sa.Column("skill_id", sa.String(length=80), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("blocked", sa.Integer(), nullable=False),
        sa.Column("gap_sum", sa.Float(), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("skill_gap_weekly", schema=None) as batch_op:
        batch_op.create_index("ix_skill_gap_weekly_org_week", ["org_id", "week_start"], unique=False)

    op.create_table(
        "role_readiness_weekly",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("role_id", sa.String(length=80), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("ready", sa.Integer(), nullable=False),
        sa.Column("close", sa.Integer(), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("role_readiness_weekly", schema=None) as batch_op:
        batch_op.create_index("ix_role_readiness_weekly_org_week", ["org_id", "week_start"], unique=False)

    op.create_table(
        "item_analysis_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pack_row_id", sa.Integer(), nullable=False),
        sa.Column("irt_params_id", sa.Integer(), nullable=False),
        sa.Column("last_response_id", sa.Integer(), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("item_analysis_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_item_analysis_runs_org_id"), ["org_id"], unique=False)

    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.create_index("ix_responses_org_id_id", ["org_id", "id"], unique=False)
    with op.batch_alter_table("mastery_history", schema=None) as batch_op:
        batch_op.create_index("ix_mastery_history_user_skill_time",
                              ["user_id", "skill_id", "created_at", "id"], unique=False)
    with op.batch_alter_table("mastery", schema=None) as batch_op:
        batch_op.create_index("ix_mastery_user_skill_p_known", ["user_id", "skill_id", "p_known"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mastery", schema=None) as batch_op:
        batch_op.drop_index("ix_mastery_user_skill_p_known")
    with op.batch_alter_table("mastery_history", schema=None) as batch_op:
        batch_op.drop_index("ix_mastery_history_user_skill_time")
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_index("ix_responses_org_id_id")
    with op.batch_alter_table("item_analysis_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_analysis_runs_org_id"))
    op.drop_table("item_analysis_runs")
    with op.batch_alter_table("role_readiness_weekly", schema=None) as batch_op:
        batch_op.drop_index("ix_role_readiness_weekly_org_week")
    op.drop_table("role_readiness_weekly")
    with op.batch_alter_table("skill_gap_weekly", schema=None) as batch_op:
        batch_op.drop_index("ix_skill_gap_weekly_org_week")
    op.drop_table("skill_gap_weekly")
    op.drop_table("report_weeks")

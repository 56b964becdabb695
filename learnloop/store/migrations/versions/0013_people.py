"""people: teams as records, deactivation, delegated team admins, consent log, SSO, SCIM, e-mail

Teams were free text typed on each membership, so one team could exist several times under
spellings that differ only in case or spacing ("Data team", "data  team "). Each team now has a
``name_key`` (trimmed, inner spaces collapsed, case-folded) unique in its organisation; this
migration merges the existing spellings of one key into the oldest team (its members move with
it) and tidies the kept name's spacing.

Revision ID: 0013_people
Revises: 0001
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0013_people"
down_revision = "0001"
branch_labels = None
depends_on = None


def _key(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip().casefold()


def _merge_team_spellings() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, org_id, name FROM teams ORDER BY id")).all()
    kept: dict[tuple[int, str], int] = {}
    for team_id, org_id, name in rows:
        key = _key(name)
        target = kept.setdefault((org_id, key), team_id)
        if target != team_id:
            conn.execute(
                sa.text("UPDATE users SET team_id = :t WHERE team_id = :d"), {"t": target, "d": team_id}
            )
            conn.execute(sa.text("DELETE FROM teams WHERE id = :d"), {"d": team_id})
        else:
            tidy = re.sub(r"\s+", " ", name).strip() or "?"
            conn.execute(
                sa.text("UPDATE teams SET name = :n, name_key = :k WHERE id = :i"),
                {"n": tidy, "k": key or "?", "i": team_id},
            )


def upgrade() -> None:
    # plain ADD COLUMN (no table rebuild on SQLite: the teams and users rows are referenced)
    op.add_column("teams", sa.Column("name_key", sa.String(200), nullable=True))
    _merge_team_spellings()
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("teams", "name_key", existing_type=sa.String(200), nullable=False)
    op.create_index("uq_teams_org_name_key", "teams", ["org_id", "name_key"], unique=True)

    op.add_column("users", sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("external_id", sa.String(200), nullable=True))
    op.add_column("users", sa.Column("sso_subject", sa.String(255), nullable=True))
    op.add_column(
        "users", sa.Column("email_reminders", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("users", sa.Column("consent_changed_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "team_admins",
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id"), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False, index=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "org_identity",
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), primary_key=True),
        sa.Column("oidc_issuer", sa.String(500), nullable=False, server_default=""),
        sa.Column("oidc_client_id", sa.String(300), nullable=False, server_default=""),
        sa.Column("oidc_client_secret", sa.String(500), nullable=False, server_default=""),
        sa.Column("oidc_domains", sa.JSON(), nullable=False),
        sa.Column("sso_only", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("scim_token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "oidc_logins",
        sa.Column("state", sa.String(100), primary_key=True),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("nonce", sa.String(100), nullable=False),
        sa.Column("code_verifier", sa.String(200), nullable=False),
        sa.Column("next_path", sa.String(2000), nullable=False, server_default="/"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "invitations",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False, index=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "email_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False, index=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("to_address", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending", index=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(300), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    for table in (
        "email_outbox",
        "invitations",
        "oidc_logins",
        "org_identity",
        "consent_events",
        "team_admins",
    ):
        op.drop_table(table)
    with op.batch_alter_table("users") as batch:
        for column in (
            "consent_changed_at",
            "email_reminders",
            "sso_subject",
            "external_id",
            "deactivated_at",
        ):
            batch.drop_column(column)
    op.drop_index("uq_teams_org_name_key", table_name="teams")
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("name_key")

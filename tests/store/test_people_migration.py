"""Migration 0013: free-text team spellings of one team become one team record."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from learnloop.store.db import alembic_config, get_engine, migrate


def test_team_spellings_are_merged_into_one_record(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = get_engine(url)
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            text(
                "INSERT INTO organisations (id, name, slug, join_code, created_at) VALUES (1, 'A', 'a', 'j1', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO organisations (id, name, slug, join_code, created_at) VALUES (2, 'B', 'b', 'j2', CURRENT_TIMESTAMP)"
            )
        )
        for tid, org, name in (
            (1, 1, "Data team"),
            (2, 1, "data  team "),
            (3, 1, "Ops"),
            (4, 2, "DATA TEAM"),
        ):
            conn.execute(
                text("INSERT INTO teams (id, org_id, name) VALUES (:i, :o, :n)"),
                {"i": tid, "o": org, "n": name},
            )
        for uid, org, team in ((1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 2, 4)):
            conn.execute(
                text(
                    "INSERT INTO users (id, org_id, team_id, email, name, password_hash, role, locale,"
                    " consent_share, is_simulated, created_at) VALUES (:i, :o, :t, :e, 'P', 'x', 'learner', 'en', 0, 0, CURRENT_TIMESTAMP)"
                ),
                {"i": uid, "o": org, "t": team, "e": f"p{uid}@x.example"},
            )
    migrate(url)
    with engine.connect() as conn:
        teams = conn.execute(text("SELECT id, org_id, name, name_key FROM teams ORDER BY id")).all()
        users = dict(conn.execute(text("SELECT id, team_id FROM users")).all())
    assert teams == [(1, 1, "Data team", "data team"), (3, 1, "Ops", "ops"), (4, 2, "DATA TEAM", "data team")]
    assert users == {1: 1, 2: 1, 3: 3, 4: 4}

"""Migration 0042: the learner tallies of an existing log are filled on upgrade, counted as the
rebuild counts them (practice answers; distinct items counted right, decisions applied), on
SQLite and PostgreSQL; downgrade drops them."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from learnloop.store.db import alembic_config, get_engine, migrate

#: (user, item, context, correct); user 2 answers item b right twice, and item c right only
#: in an answer an instructor then marked wrong
ANSWERS = [
    (1, "a", "practice", True),
    (1, "a", "practice", True),
    (1, "b", "practice", False),
    (1, "c", "check", True),
    (2, "b", "practice", True),
    (2, "b", "practice", True),
    (2, "c", "practice", True),
    (2, "a", "practice", False),
]


def _alembic(url: str, action: str, revision: str) -> None:
    with get_engine(url).begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)


def _tallies(url: str) -> dict[int, tuple[int, int]]:
    with get_engine(url).connect() as conn:
        rows = conn.execute(text("SELECT user_id, practice_answers, right_items FROM learner_tallies"))
        return {u: (p, r) for u, p, r in rows}


def test_upgrade_fills_the_tallies_from_the_log(db_url: str) -> None:
    migrate(db_url)
    _alembic(db_url, "downgrade", "0042_learner_tallies@-1")  # the schema before the tallies
    with get_engine(db_url).begin() as conn:
        assert "learner_tallies" not in {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type='table'"
                    if db_url.startswith("sqlite")
                    else "SELECT tablename FROM pg_tables"
                )
            )
        }
        conn.execute(
            text(
                "INSERT INTO organisations (id, name, slug, join_code, created_at)"
                " VALUES (1, 'A', 'a', 'j1', CURRENT_TIMESTAMP)"
            )
        )
        for uid in (1, 2, 3):
            conn.execute(
                text(
                    "INSERT INTO users (id, org_id, email, name, password_hash, role, locale,"
                    " consent_share, is_simulated, created_at) VALUES (:u, 1, :e, 'P', 'x', 'learner',"
                    " 'en', false, false, CURRENT_TIMESTAMP)"
                ),
                {"u": uid, "e": f"p{uid}@x.example"},
            )
        for rid, (uid, item, context, correct) in enumerate(ANSWERS, start=1):
            conn.execute(
                text(
                    "INSERT INTO responses (id, org_id, user_id, item_id, skills, kind, context, answer,"
                    " correct, score, hints_used, created_at) VALUES (:r, 1, :u, :i, '[]', 'text', :c,"
                    " '{}', :ok, 0, 0, CURRENT_TIMESTAMP)"
                ),
                {"r": rid, "u": uid, "i": item, "c": context, "ok": correct},
            )
        conn.execute(
            text(
                "INSERT INTO grade_reviews (org_id, user_id, item_id, answer_text, provisional_correct,"
                " provisional_score, confidence, grader, reason, rationale, status, decided_correct,"
                " response_id, created_at) VALUES (1, 2, 'c', '', true, 1, 0.5, 'g', 'r', '', 'decided',"
                " false, 7, CURRENT_TIMESTAMP)"
            )
        )
    migrate(db_url)
    # user 1: 3 practice answers, items a and c right; user 2: 4 practice answers, only b right
    # (c's one right answer was overturned); user 3 answered nothing and has no row
    assert _tallies(db_url) == {1: (3, 2), 2: (4, 1)}
    _alembic(db_url, "downgrade", "0042_learner_tallies@-1")
    migrate(db_url)
    assert _tallies(db_url) == {1: (3, 2), 2: (4, 1)}

"""Migration 0041: a skill credential's skill moves from ``role_id`` (``skill:<id>``) to its own
``skill_id`` column, on SQLite and PostgreSQL; exactly one of role and skill is set; the API's
view of the credential is what it was; downgrade restores the old form."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from learnloop.config import Settings
from learnloop.services import badges
from learnloop.services.context import AppContext
from learnloop.services.packs import import_pack
from learnloop.store.db import alembic_config, get_engine, migrate
from learnloop.store.models import User
from tests.conftest import MINI_PACK
from tests.services.report_builders import current_user

ROLE_ROW, SKILL_ROW = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"


def _alembic(url: str, action: str, revision: str) -> None:
    with get_engine(url).begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)


def _rows(url: str) -> dict[str, tuple[str | None, str | None]]:
    with get_engine(url).connect() as conn:
        found = conn.execute(text("SELECT id, role_id, skill_id FROM badge_credentials ORDER BY id"))
        return {i: (r, s) for i, r, s in found}


def _insert(url: str, ident: str, role_id: str | None, skill_id: str | None) -> None:
    with get_engine(url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO badge_credentials (id, org_id, user_id, role_id, skill_id, document, issued_at)"
                " VALUES (:i, 1, 1, :r, :s, '{}', CURRENT_TIMESTAMP)"
            ),
            {"i": ident, "r": role_id, "s": skill_id},
        )


def test_skill_rows_move_to_skill_id(db_url: str) -> None:
    _alembic(db_url, "upgrade", "0022_badge_status")  # the schema that wrote ``skill:`` rows
    with get_engine(db_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organisations (id, name, slug, join_code, created_at)"
                " VALUES (1, 'A', 'a', 'j1', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO users (id, org_id, email, name, password_hash, role, locale, consent_share,"
                " is_simulated, created_at) VALUES (1, 1, 'p@x.example', 'P', 'x', 'learner', 'en',"
                " false, false, CURRENT_TIMESTAMP)"
            )
        )
        for ident, key, index in ((ROLE_ROW, "builder", 7), (SKILL_ROW, "skill:basics.tokens", 8)):
            conn.execute(
                text(
                    "INSERT INTO badge_credentials (id, org_id, user_id, role_id, document, issued_at,"
                    " status_index) VALUES (:i, 1, 1, :k, :d, CURRENT_TIMESTAMP, :n)"
                ),
                {"i": ident, "k": key, "d": '{"name": "stored as signed"}', "n": index},
            )
    migrate(db_url)
    assert _rows(db_url) == {ROLE_ROW: ("builder", None), SKILL_ROW: (None, "basics.tokens")}
    with get_engine(db_url).connect() as conn:  # the signed documents are untouched
        documents = conn.execute(text("SELECT document FROM badge_credentials")).scalars().all()
    assert all("stored as signed" in str(d) for d in documents)

    # exactly one of role and skill; one credential per learner and skill (pg8000 reports a
    # check violation as a ProgrammingError, hence DBAPIError and the constraint's name)
    for role_id, skill_id in ((None, None), ("builder", "basics.prompts")):
        with pytest.raises(DBAPIError, match="ck_badge_credentials_role_or_skill"):
            _insert(db_url, "00000000-0000-4000-8000-00000000000f", role_id, skill_id)
    with pytest.raises(DBAPIError, match="ux_badge_credentials_user_skill|badge_credentials.skill_id"):
        _insert(db_url, "00000000-0000-4000-8000-00000000000e", None, "basics.tokens")
    _insert(db_url, "00000000-0000-4000-8000-00000000000d", None, "basics.prompts")  # another skill

    # the API's view is what it was: the skill credential's key reads skill:<id>
    ctx = AppContext(settings=Settings(database_url=db_url, default_pack=MINI_PACK))
    import_pack(ctx, MINI_PACK)
    with ctx.session() as session:
        row = session.get(User, 1)
        assert row is not None
        learner = current_user(session, row)
    views = {v.id: v for v in badges.my_credentials(ctx, learner)}
    assert (views[ROLE_ROW].role_id, views[ROLE_ROW].skill_id) == ("builder", None)
    assert (views[SKILL_ROW].role_id, views[SKILL_ROW].skill_id) == ("skill:basics.tokens", "basics.tokens")

    _alembic(db_url, "downgrade", "0041_badge_skill_id@-1")
    assert _rows_old(db_url) == {
        ROLE_ROW: "builder",
        SKILL_ROW: "skill:basics.tokens",
        "00000000-0000-4000-8000-00000000000d": "skill:basics.prompts",
    }
    migrate(db_url)  # and up again
    assert _rows(db_url)[SKILL_ROW] == (None, "basics.tokens")


def _rows_old(url: str) -> dict[str, str]:
    with get_engine(url).connect() as conn:
        return dict(conn.execute(text("SELECT id, role_id FROM badge_credentials ORDER BY id")).all())

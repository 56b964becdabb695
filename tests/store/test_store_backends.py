"""The store on SQLite and on a real PostgreSQL: schema, transactions, rebuild from the log."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select

from learnloop.errors import InvalidInput
from learnloop.services import auth, practice
from learnloop.services.context import AppContext
from learnloop.services.mastery import rebuild_all, snapshot
from learnloop.store.db import get_engine
from learnloop.store.models import Mastery, Response, User
from tests.conftest import MINI_PACK, answer_payload


def test_migrations_create_every_table(any_ctx: AppContext) -> None:
    tables = set(inspect(get_engine(any_ctx.settings.database_url)).get_table_names())
    assert {
        "organisations",
        "teams",
        "users",
        "enrolments",
        "responses",
        "mastery",
        "content_packs",
        "alembic_version",
    } <= tables


def test_failed_write_rolls_back_everything(any_ctx: AppContext) -> None:
    with any_ctx.session() as session:
        org = auth.default_organisation(session)
        org_id = org.id
    with pytest.raises(InvalidInput), any_ctx.session() as session:
        auth.create_user(
            session, org_id=org_id, email="ok@example.org", name="OK", password="tidal-ferry-quartz-81"
        )
        auth.create_user(
            session, org_id=org_id, email="not-an-email", name="Bad", password="tidal-ferry-quartz-81"
        )
    with any_ctx.session() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0


def _answer_many(ctx: AppContext, email: str, n: int, correct_every: int) -> None:
    from learnloop.content.loader import load_pack

    pack = load_pack(MINI_PACK)
    login = auth.signup(ctx, email=email, name="L", password="tidal-ferry-quartz-81")
    practice.enrol(ctx, login.user, "builder")
    for k in range(n):
        shown = practice.next_item(ctx, login.user)
        item = pack.item(shown.item["id"])
        right = k % correct_every != 0
        payload = answer_payload(item, right)
        practice.answer(ctx, login.user, item.id, payload)


def test_rebuild_from_log_equals_live_state(any_ctx: AppContext) -> None:
    _answer_many(any_ctx, "a@example.org", 12, 3)
    _answer_many(any_ctx, "b@example.org", 7, 2)
    with any_ctx.session() as session:
        live = snapshot(session)
        n_responses = session.scalar(select(func.count()).select_from(Response))
    assert n_responses == 19 and live
    with any_ctx.session() as session:
        session.execute(Mastery.__table__.update().values(p_known=0.0))  # corrupt derived state
    with any_ctx.session() as session:
        assert rebuild_all(session) == 19
    with any_ctx.session() as session:
        assert snapshot(session) == live

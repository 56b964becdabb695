"""Resolving a login token on every request: one read, and the same answers as before."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from learnloop.services import auth
from learnloop.services.context import AppContext
from learnloop.store.models import AuthSession, Team, TeamAdmin, User, as_utc, team_name_key, utcnow

PASSWORD = "violet-harbour-57-lantern"


def _login(ctx: AppContext) -> auth.LoginResult:
    with ctx.session() as session:
        org = auth.create_organisation(session, "Resolve Org")
        auth.create_user(
            session, org_id=org.id, email="ann@resolve.example", name="Ann", password=PASSWORD, locale="zh_CN"
        )
    return auth.login(ctx, email="ann@resolve.example", password=PASSWORD)


def _set_expiry(ctx: AppContext, token: str, when: object) -> None:
    with ctx.session() as session:
        row = session.get(AuthSession, auth._token_hash(token))
        assert row is not None
        row.expires_at = when  # type: ignore[assignment]


def test_resolve_reads_the_login_in_one_statement(any_ctx: AppContext) -> None:
    ctx = any_ctx
    login = _login(ctx)
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        user = auth.resolve(ctx, login.token)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert user == login.user  # id, organisation and its name, team, email, name, role, locale, CSRF
    assert user.locale == "zh_CN" and user.team_admin is False
    assert len(seen) == 1, seen  # no write: the login was made a moment ago
    assert auth.resolve(ctx, "not-a-token") is None and auth.resolve(ctx, None) is None


def test_resolve_slides_the_idle_deadline_and_drops_expired_logins(any_ctx: AppContext) -> None:
    ctx = any_ctx
    login = _login(ctx)
    soon = utcnow() + timedelta(minutes=5)
    _set_expiry(ctx, login.token, soon)
    assert auth.resolve(ctx, login.token) is not None
    with ctx.session() as session:
        row = session.get(AuthSession, auth._token_hash(login.token))
        assert row is not None
        slid = as_utc(row.expires_at)
    idle = timedelta(minutes=ctx.settings.session_idle_minutes)
    assert slid > soon and abs(slid - (utcnow() + idle)) < timedelta(minutes=1)
    _set_expiry(ctx, login.token, utcnow() - timedelta(seconds=1))
    assert auth.resolve(ctx, login.token) is None
    with ctx.session() as session:
        assert session.get(AuthSession, auth._token_hash(login.token)) is None


def test_resolve_sees_team_admins_and_deactivation_at_once(any_ctx: AppContext) -> None:
    ctx = any_ctx
    login = _login(ctx)
    with ctx.session() as session:
        team = Team(org_id=login.user.org_id, name="Blue", name_key=team_name_key("Blue"))
        session.add(team)
        session.flush()
        session.add(TeamAdmin(team_id=team.id, user_id=login.user.id, org_id=login.user.org_id))
    resolved = auth.resolve(ctx, login.token)
    assert resolved is not None and resolved.team_admin is True
    with ctx.session() as session:
        user = session.scalars(select(User).where(User.id == login.user.id)).one()
        user.deactivated_at = utcnow()
    assert auth.resolve(ctx, login.token) is None

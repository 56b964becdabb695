"""People admin services: teams as records, deactivation, search, reporting lines, consent,
delegated team admins; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from learnloop.errors import Conflict, Forbidden, InvalidInput, NotFound
from learnloop.services import auth, reports
from learnloop.services.auth import CurrentUser, create_organisation, create_user
from learnloop.services.context import AppContext
from learnloop.services.people import consent, provisioning, teams
from learnloop.store.models import AuthSession, ConsentEvent, User

PASSWORD = "violet-harbour-57-lantern"


def _org(ctx: AppContext, name: str = "Acme") -> dict[str, int]:
    ids = {}
    with ctx.session() as session:
        org = create_organisation(session, name)
        tag = name.lower()
        for key, role in (("admin", "admin"), ("boss", "manager"), ("ann", "learner"), ("bob", "learner")):
            user = create_user(
                session,
                org_id=org.id,
                email=f"{key}@{tag}.example",
                name=f"{key.title()} {name}",
                password=PASSWORD,
                role=role,
            )
            ids[key] = user.id
    return ids


def _me(ctx: AppContext, email: str) -> CurrentUser:
    return auth.login(ctx, email=email, password=PASSWORD).user


def test_teams_are_records_chosen_from_a_list(any_ctx: AppContext) -> None:
    ctx = any_ctx
    ids = _org(ctx)
    admin = _me(ctx, "admin@acme.example")
    data = teams.create_team(ctx, admin, "  Data   team ")
    assert data.name == "Data team"
    with pytest.raises(Conflict):
        teams.create_team(ctx, admin, "DATA TEAM")  # a typo in case or spacing is the same team
    with pytest.raises(InvalidInput):
        teams.create_team(ctx, admin, "   ")
    ops = teams.create_team(ctx, admin, "Ops")
    with pytest.raises(Conflict):
        teams.rename_team(ctx, admin, ops.id, "data team")
    row = provisioning.set_team(ctx, admin, ids["ann"], data.id)
    assert row.team == "Data team" and row.team_id == data.id
    # the old name-based route no longer creates a team on a typo
    from learnloop.services import organisation

    with pytest.raises(InvalidInput):
        organisation.set_team(ctx, admin, ids["bob"], "Dta team")
    assert organisation.set_team(ctx, admin, ids["bob"], "data TEAM").team == "Data team"
    assert [t.name for t in teams.list_teams(ctx, admin)] == ["Data team", "Ops"]
    assert teams.list_teams(ctx, admin)[0].members == 2
    teams.delete_team(ctx, admin, data.id)
    assert provisioning.search_members(ctx, admin, q="ann").members[0].team_id is None


def test_deactivation_revokes_sessions_and_tokens_at_once(any_ctx: AppContext) -> None:
    ctx = any_ctx
    ids = _org(ctx)
    admin = _me(ctx, "admin@acme.example")
    ann_login = auth.login(ctx, email="ann@acme.example", password=PASSWORD)
    second = auth.login(ctx, email="ann@acme.example", password=PASSWORD)
    assert auth.resolve(ctx, ann_login.token) is not None
    row = provisioning.deactivate(ctx, admin, ids["ann"])
    assert row.active is False
    assert auth.resolve(ctx, ann_login.token) is None and auth.resolve(ctx, second.token) is None
    with ctx.session() as session:
        assert session.scalars(select(AuthSession).where(AuthSession.user_id == ids["ann"])).first() is None
    with pytest.raises(Exception, match="deactivated"):
        auth.login(ctx, email="ann@acme.example", password=PASSWORD)
    with pytest.raises(InvalidInput):
        provisioning.deactivate(ctx, admin, ids["admin"])
    assert provisioning.reactivate(ctx, admin, ids["ann"]).active is True
    assert auth.resolve(ctx, auth.login(ctx, email="ann@acme.example", password=PASSWORD).token) is not None


def test_search_and_filter(any_ctx: AppContext) -> None:
    ctx = any_ctx
    ids = _org(ctx)
    _org(ctx, "Other")
    admin = _me(ctx, "admin@acme.example")
    team = teams.create_team(ctx, admin, "Blue")
    provisioning.set_team(ctx, admin, ids["bob"], team.id)
    provisioning.deactivate(ctx, admin, ids["ann"])
    everyone = provisioning.search_members(ctx, admin, status="all")
    assert everyone.total == 4 and all(m.email.endswith("@acme.example") for m in everyone.members)
    assert [m.id for m in provisioning.search_members(ctx, admin, q="ANN").members] == []
    assert [m.id for m in provisioning.search_members(ctx, admin, q="ANN", status="deactivated").members] == [
        ids["ann"]
    ]
    assert [m.id for m in provisioning.search_members(ctx, admin, team_id=team.id).members] == [ids["bob"]]
    assert [m.id for m in provisioning.search_members(ctx, admin, role="manager").members] == [ids["boss"]]
    assert provisioning.search_members(ctx, admin, q="%").total == 0  # LIKE wildcards are literal
    page = provisioning.search_members(ctx, admin, status="all", limit=2, offset=2)
    assert page.total == 4 and len(page.members) == 2
    with pytest.raises(InvalidInput):
        provisioning.search_members(ctx, admin, role="emperor")
    learner = _me(ctx, "bob@acme.example")
    with pytest.raises(Forbidden):
        provisioning.search_members(ctx, learner)


def test_reporting_lines_and_consent_drive_the_managers_view(any_ctx: AppContext) -> None:
    ctx = any_ctx
    ids = _org(ctx)
    other = _org(ctx, "Other")
    admin = _me(ctx, "admin@acme.example")
    with pytest.raises(InvalidInput):  # a learner cannot be a manager
        provisioning.set_manager(ctx, admin, ids["ann"], ids["bob"])
    with pytest.raises(NotFound):  # nor can someone of another organisation
        provisioning.set_manager(ctx, admin, ids["ann"], other["boss"])
    with pytest.raises(InvalidInput):
        provisioning.set_manager(ctx, admin, ids["boss"], ids["boss"])
    assert provisioning.set_manager(ctx, admin, ids["ann"], ids["boss"]).manager == "Boss Acme"
    provisioning.set_manager(ctx, admin, ids["boss"], ids["admin"])
    with pytest.raises(InvalidInput, match="loop"):
        provisioning.set_manager(ctx, admin, ids["admin"], ids["boss"])

    boss = _me(ctx, "boss@acme.example")
    ann = _me(ctx, "ann@acme.example")

    def visible() -> bool:
        with ctx.session() as session:
            person = next(
                p
                for p in reports.people_of_org(session, ctx.active_pack(session), boss.org_id)
                if p.id == ids["ann"]
            )
        return reports.may_see_person(boss, person)

    assert visible() is False
    state = consent.set_consent(ctx, ann, True)
    assert state.granted and state.manager == "Boss Acme" and state.changed_at is not None
    assert visible() is True
    consent.set_consent(ctx, ann, True)  # no change, no new log entry
    consent.set_consent(ctx, ann, False)
    assert visible() is False
    with ctx.session() as session:
        events = session.scalars(select(ConsentEvent).where(ConsentEvent.user_id == ids["ann"])).all()
        assert [e.granted for e in events] == [True, False]
        assert all(e.created_at is not None for e in events)
    assert [h.granted for h in consent.get_consent(ctx, ann).history] == [False, True]


def test_delegated_team_admin_manages_only_their_team(any_ctx: AppContext) -> None:
    ctx = any_ctx
    ids = _org(ctx)
    admin = _me(ctx, "admin@acme.example")
    blue = teams.create_team(ctx, admin, "Blue")
    red = teams.create_team(ctx, admin, "Red")
    provisioning.set_team(ctx, admin, ids["ann"], blue.id)
    provisioning.set_team(ctx, admin, ids["bob"], red.id)
    row = teams.grant_team_admin(ctx, admin, blue.id, ids["boss"])
    assert [a.name for a in row.admins] == ["Boss Acme"]
    boss = _me(ctx, "boss@acme.example")
    assert boss.team_admin is True
    assert [m.id for m in provisioning.search_members(ctx, boss).members] == [ids["ann"]]
    assert [t.name for t in teams.list_teams(ctx, boss)] == ["Blue"]
    assert provisioning.deactivate(ctx, boss, ids["ann"]).active is False
    provisioning.reactivate(ctx, boss, ids["ann"])
    with pytest.raises(NotFound):  # Bob is in another team
        provisioning.deactivate(ctx, boss, ids["bob"])
    with pytest.raises(NotFound):  # moving Ann into a team Boss does not manage
        provisioning.set_team(ctx, boss, ids["ann"], red.id)
    with pytest.raises(Forbidden):  # team admins do not create teams or delegate
        teams.create_team(ctx, boss, "Green")
    with pytest.raises(Forbidden):
        teams.grant_team_admin(ctx, boss, blue.id, ids["bob"])
    teams.revoke_team_admin(ctx, admin, blue.id, ids["boss"])
    with pytest.raises(Forbidden):
        provisioning.search_members(ctx, boss)


def test_other_organisations_are_invisible(any_ctx: AppContext) -> None:
    ctx = any_ctx
    _org(ctx)
    other = _org(ctx, "Other")
    admin = _me(ctx, "admin@acme.example")
    with ctx.session() as session:
        other_admin = session.get(User, other["admin"])
        assert other_admin is not None
    other_team = teams.create_team(ctx, _me(ctx, "admin@other.example"), "Theirs")
    for call in (
        lambda: provisioning.deactivate(ctx, admin, other["ann"]),
        lambda: provisioning.set_manager(ctx, admin, other["ann"], None),
        lambda: teams.rename_team(ctx, admin, other_team.id, "Mine"),
        lambda: teams.delete_team(ctx, admin, other_team.id),
        lambda: teams.grant_team_admin(ctx, admin, other_team.id, other["ann"]),
        lambda: provisioning.search_members(ctx, admin, team_id=other_team.id),
    ):
        with pytest.raises(NotFound):
            call()


def test_demo_builds_reporting_lines_and_consent_through_the_services(ctx: AppContext) -> None:
    from sqlalchemy import func

    from learnloop.services import demo

    demo.create_demo(ctx, learners=12, answers=(3, 6))
    with ctx.session() as session:
        consenting = session.scalar(
            select(func.count()).select_from(User).where(User.consent_share.is_(True))
        )
        logged = session.scalar(
            select(func.count()).select_from(ConsentEvent).where(ConsentEvent.granted.is_(True))
        )
        managed = session.scalar(select(func.count()).select_from(User).where(User.manager_id.is_not(None)))
    assert consenting and consenting == logged  # every consent has its log entry
    assert managed and managed < 12

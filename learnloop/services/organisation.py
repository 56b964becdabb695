"""An organisation's people and teams, administered by its admins; every query is org-scoped."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import func, select

from learnloop.errors import InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.services.auth import ROLES, CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.people.teams import find_team
from learnloop.store.models import Organisation, Response, Team, User


class Member(BaseModel):
    id: int
    name: str
    email: str
    role: str
    team: str | None
    answers: int


class OrgOverview(BaseModel):
    id: int
    name: str
    join_code: str
    teams: list[str]
    members: list[Member]


def overview(ctx: AppContext, admin: CurrentUser) -> OrgOverview:
    admin.require("admin")
    with ctx.session() as session:
        org = session.get(Organisation, admin.org_id)
        assert org is not None
        teams = {t.id: t.name for t in session.execute(select(Team).where(Team.org_id == org.id)).scalars()}
        counts = dict(
            session.execute(
                select(Response.user_id, func.count())
                .where(Response.org_id == org.id)
                .group_by(Response.user_id)
            ).all()
        )
        users = session.execute(
            select(User).where(User.org_id == org.id, User.deleted_at.is_(None)).order_by(User.name)
        ).scalars()
        members = [
            Member(
                id=u.id,
                name=u.name,
                email=u.email,
                role=u.role,
                team=teams.get(u.team_id) if u.team_id else None,
                answers=counts.get(u.id, 0),
            )
            for u in users
        ]
        return OrgOverview(
            id=org.id, name=org.name, join_code=org.join_code, teams=sorted(teams.values()), members=members
        )


def _member(session, admin: CurrentUser, user_id: int) -> User:  # type: ignore[no-untyped-def]
    user = session.get(User, user_id)
    # Users of other organisations are reported as missing, not forbidden: no existence leak.
    if user is None or user.org_id != admin.org_id or user.deleted_at is not None:
        raise NotFound(_("No member with id %(id)s in your organisation.") % {"id": user_id})
    return user


def update_member(
    ctx: AppContext, admin: CurrentUser, user_id: int, *, role: str | None = None, team: str | None = None
) -> Member:
    """Change a member's role and/or team (by name, chosen from the organisation's teams) in one
    transaction: both change or neither does."""
    admin.require("admin")
    if role is None and team is None:
        raise InvalidInput(_("Give a role or a team."))
    if role is not None and role not in ROLES:
        raise InvalidInput(_("The role must be one of: %(roles)s.") % {"roles": ", ".join(ROLES)})
    team_name = team.strip() if team is not None else None
    if team_name is not None and len(team_name) > 200:
        raise InvalidInput(_("Team names have at most 200 characters."))
    with ctx.session() as session:
        user = _member(session, admin, user_id)
        if role is not None:
            if user.id == admin.id and role != "admin":
                raise InvalidInput(_("You cannot remove your own admin role."))
            user.role = role
        if team_name is not None:
            found = find_team(session, admin.org_id, team_name) if team_name else None
            if team_name and found is None:
                # teams are chosen from the list (services/people/teams.py): a typo is not a new team
                raise InvalidInput(_("No team named %(team)s (create it first).") % {"team": team_name})
            user.team_id = found.id if found else None
        current = session.get(Team, user.team_id) if user.team_id else None
        return Member(
            id=user.id,
            name=user.name,
            email=user.email,
            role=user.role,
            team=current.name if current else None,
            answers=0,
        )


def set_role(ctx: AppContext, admin: CurrentUser, user_id: int, role: str) -> Member:
    return update_member(ctx, admin, user_id, role=role)


def set_team(ctx: AppContext, admin: CurrentUser, user_id: int, team_name: str) -> Member:
    return update_member(ctx, admin, user_id, team=team_name)

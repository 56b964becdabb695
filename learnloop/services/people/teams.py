"""Teams as records, chosen from a list, and delegated team admins.

An organisation's admins create, rename and delete teams; a member is put in a team by its id.
An admin may make any member the admin of a team: a team admin manages that team's members
only (search, deactivate, reporting lines, moving people in and out), never roles, other teams
or the organisation's settings. Every query is scoped to the caller's organisation; a team of
another organisation is reported as missing.
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from learnloop.errors import Conflict, Forbidden, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import Team, TeamAdmin, User, team_name_key


class TeamAdminRef(BaseModel):
    id: int
    name: str


class TeamRow(BaseModel):
    id: int
    name: str
    members: int
    admins: list[TeamAdminRef]


def managed_team_ids(session: Session, user: CurrentUser) -> set[int] | None:
    """The teams this person may manage: ``None`` means every team (an admin)."""
    if user.role == "admin":
        return None
    return set(session.scalars(select(TeamAdmin.team_id).where(TeamAdmin.user_id == user.id)))


def require_people_admin(session: Session, user: CurrentUser) -> set[int] | None:
    """Admins and team admins pass (with the teams they manage); everyone else is refused."""
    teams = managed_team_ids(session, user)
    if teams is not None and not teams:
        raise Forbidden(_("Only admins and team admins manage people."))
    return teams


def team_of_org(session: Session, org_id: int, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if team is None or team.org_id != org_id:
        raise NotFound(_("No team with id %(id)s in your organisation.") % {"id": team_id})
    return team


def find_team(session: Session, org_id: int, name: str) -> Team | None:
    key = team_name_key(name)
    return session.scalars(select(Team).where(Team.org_id == org_id, Team.name_key == key)).first()


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise InvalidInput(_("A team name of 1-200 characters is required."))
    return name


def _rows(session: Session, org_id: int, only: set[int] | None) -> list[TeamRow]:
    query = select(Team).where(Team.org_id == org_id).order_by(Team.name_key)
    if only is not None:
        query = query.where(Team.id.in_(only))
    teams = list(session.scalars(query))
    counts = dict(
        session.execute(
            select(User.team_id, func.count())
            .where(User.org_id == org_id, User.deleted_at.is_(None), User.deactivated_at.is_(None))
            .group_by(User.team_id)
        ).all()
    )
    admins: dict[int, list[TeamAdminRef]] = {}
    for team_id, uid, name in session.execute(
        select(TeamAdmin.team_id, User.id, User.name)
        .join(User, User.id == TeamAdmin.user_id)
        .where(TeamAdmin.org_id == org_id)
        .order_by(User.name)
    ):
        admins.setdefault(team_id, []).append(TeamAdminRef(id=uid, name=name))
    return [
        TeamRow(id=t.id, name=t.name, members=counts.get(t.id, 0), admins=admins.get(t.id, [])) for t in teams
    ]


def list_teams(ctx: AppContext, user: CurrentUser) -> list[TeamRow]:
    """The teams the caller manages (every team for an admin), by name."""
    with ctx.session() as session:
        only = require_people_admin(session, user)
        return _rows(session, user.org_id, only)


def _row(session: Session, org_id: int, team_id: int) -> TeamRow:
    return next(r for r in _rows(session, org_id, {team_id}))


def create_team(ctx: AppContext, admin: CurrentUser, name: str) -> TeamRow:
    admin.require("admin")
    name = _clean_name(name)
    with ctx.session() as session:
        existing = find_team(session, admin.org_id, name)
        if existing is not None:
            raise Conflict(_("A team named %(name)s already exists.") % {"name": existing.name})
        team = Team(org_id=admin.org_id, name=name, name_key=team_name_key(name))
        session.add(team)
        session.flush()
        return _row(session, admin.org_id, team.id)


def rename_team(ctx: AppContext, admin: CurrentUser, team_id: int, name: str) -> TeamRow:
    admin.require("admin")
    name = _clean_name(name)
    with ctx.session() as session:
        team = team_of_org(session, admin.org_id, team_id)
        other = find_team(session, admin.org_id, name)
        if other is not None and other.id != team.id:
            raise Conflict(_("A team named %(name)s already exists.") % {"name": other.name})
        team.name, team.name_key = name, team_name_key(name)
        session.flush()
        return _row(session, admin.org_id, team.id)


def delete_team(ctx: AppContext, admin: CurrentUser, team_id: int) -> None:
    """Delete a team: its members stay, without a team; its team admins lose the delegation."""
    admin.require("admin")
    with ctx.session() as session:
        team = team_of_org(session, admin.org_id, team_id)
        session.execute(update(User).where(User.team_id == team.id).values(team_id=None))
        session.execute(delete(TeamAdmin).where(TeamAdmin.team_id == team.id))
        session.delete(team)


def _active_member(session: Session, org_id: int, user_id: int) -> User:
    member = session.get(User, user_id)
    if member is None or member.org_id != org_id or member.deleted_at is not None:
        raise NotFound(_("No member with id %(id)s in your organisation.") % {"id": user_id})
    return member


def grant_team_admin(ctx: AppContext, admin: CurrentUser, team_id: int, user_id: int) -> TeamRow:
    admin.require("admin")
    with ctx.session() as session:
        team = team_of_org(session, admin.org_id, team_id)
        member = _active_member(session, admin.org_id, user_id)
        if member.deactivated_at is not None:
            raise InvalidInput(_("A deactivated member cannot administer a team."))
        if session.get(TeamAdmin, (team.id, member.id)) is None:
            session.add(TeamAdmin(team_id=team.id, user_id=member.id, org_id=admin.org_id))
            session.flush()
        return _row(session, admin.org_id, team.id)


def revoke_team_admin(ctx: AppContext, admin: CurrentUser, team_id: int, user_id: int) -> TeamRow:
    admin.require("admin")
    with ctx.session() as session:
        team = team_of_org(session, admin.org_id, team_id)
        session.execute(delete(TeamAdmin).where(TeamAdmin.team_id == team.id, TeamAdmin.user_id == user_id))
        return _row(session, admin.org_id, team.id)

"""The member directory and the one place members are created and changed.

Pages, the API, CSV import, SCIM and single sign-on all call these functions. Admins manage the
whole organisation; a team admin manages the members of their teams only (see ``teams``).
Deactivating a member ends every login and API token of theirs in the same transaction, and
``auth.resolve`` refuses a deactivated member's token on the next request.
"""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from learnloop.errors import Conflict, Forbidden, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.services import auth
from learnloop.services.auth import ROLES, CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.people import webhooks
from learnloop.services.people.teams import require_people_admin, team_of_org
from learnloop.store.models import Team, User, utcnow

#: An account that has never set a password: no password verifies against it (Argon2 refuses
#: the hash), so the person logs in through an invitation link or single sign-on.
NO_PASSWORD = "!no-password"
#: roles whose holders can be someone's manager (they see their reports' individual figures)
MANAGER_ROLES = ("manager", "admin")
#: the most rows one CSV import takes (larger files: split them)

Status = Literal["active", "deactivated", "all"]


class MemberRow(BaseModel):
    id: int
    name: str
    email: str
    role: str
    team_id: int | None
    team: str | None
    manager_id: int | None
    manager: str | None
    active: bool
    consent_share: bool
    external_id: str | None = None


class MemberPage(BaseModel):
    members: list[MemberRow]
    total: int
    limit: int
    offset: int


def _rows(session: Session, users: list[User]) -> list[MemberRow]:
    team_ids = {u.team_id for u in users if u.team_id}
    manager_ids = {u.manager_id for u in users if u.manager_id}
    teams = (
        dict(session.execute(select(Team.id, Team.name).where(Team.id.in_(team_ids))).all())
        if team_ids
        else {}
    )
    managers = (
        dict(session.execute(select(User.id, User.name).where(User.id.in_(manager_ids))).all())
        if manager_ids
        else {}
    )
    return [
        MemberRow(
            id=u.id,
            name=u.name,
            email=u.email,
            role=u.role,
            team_id=u.team_id,
            team=teams.get(u.team_id) if u.team_id else None,
            manager_id=u.manager_id,
            manager=managers.get(u.manager_id) if u.manager_id else None,
            active=u.deactivated_at is None,
            consent_share=bool(u.consent_share),
            external_id=u.external_id,
        )
        for u in users
    ]


def member_row(session: Session, user: User) -> MemberRow:
    return _rows(session, [user])[0]


def search_members(
    ctx: AppContext,
    user: CurrentUser,
    *,
    q: str = "",
    team_id: int | None = None,
    role: str | None = None,
    status: Status = "active",
    manager_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> MemberPage:
    """Members matching every filter given, by name; ``q`` matches name or e-mail (any case)."""
    if role is not None and role not in ROLES:
        raise InvalidInput(_("The role must be one of: %(roles)s.") % {"roles": ", ".join(ROLES)})
    if status not in ("active", "deactivated", "all"):
        raise InvalidInput(_("The status must be active, deactivated or all."))
    if not 1 <= limit <= 500 or offset < 0:
        raise InvalidInput(_("The page size must be 1-500 and the offset at least 0."))
    with ctx.session() as session:
        only = require_people_admin(session, user)
        query = select(User).where(User.org_id == user.org_id, User.deleted_at.is_(None))
        if only is not None:
            query = query.where(User.team_id.in_(only))
        if team_id is not None:
            team_of_org(session, user.org_id, team_id)
            query = query.where(User.team_id == team_id)
        if role:
            query = query.where(User.role == role)
        if status == "active":
            query = query.where(User.deactivated_at.is_(None))
        elif status == "deactivated":
            query = query.where(User.deactivated_at.is_not(None))
        if manager_id is not None:
            query = query.where(User.manager_id == manager_id)
        text = q.strip().lower()
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(
                or_(
                    func.lower(User.name).like(pattern, escape="\\"),
                    func.lower(User.email).like(pattern, escape="\\"),
                )
            )
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        users = list(
            session.scalars(query.order_by(func.lower(User.name), User.id).limit(limit).offset(offset))
        )
        return MemberPage(members=_rows(session, users), total=total, limit=limit, offset=offset)


def managers(ctx: AppContext, user: CurrentUser) -> list[MemberRow]:
    """Active members who can be someone's manager, for the list to choose from."""
    with ctx.session() as session:
        require_people_admin(session, user)
        users = list(
            session.scalars(
                select(User)
                .where(
                    User.org_id == user.org_id,
                    User.deleted_at.is_(None),
                    User.deactivated_at.is_(None),
                    User.role.in_(MANAGER_ROLES),
                )
                .order_by(func.lower(User.name))
            )
        )
        return _rows(session, users)


def managed_member(session: Session, user: CurrentUser, member_id: int) -> User:
    """A member the caller may manage; others (and other organisations') are reported missing."""
    only = require_people_admin(session, user)
    member = session.get(User, member_id)
    if (
        member is None
        or member.org_id != user.org_id
        or member.deleted_at is not None
        or (only is not None and member.team_id not in only)
    ):
        raise NotFound(_("No member with id %(id)s in your organisation.") % {"id": member_id})
    if only is not None and member.role == "admin":
        raise Forbidden(_("Team admins cannot change an admin's account."))
    return member


def set_active(session: Session, member: User, active: bool) -> None:
    """Deactivate (ending every login and token at once) or reactivate a member."""
    if active:
        from learnloop.services.people.data_rights import is_erased

        if member.deactivated_at is not None and is_erased(session, member.id):
            raise Conflict(_("This member's data was erased; the account cannot be reactivated."))
        member.deactivated_at = None
    elif member.deactivated_at is None:
        member.deactivated_at = utcnow()
        auth.revoke_sessions(session, member.id)


def deactivate(ctx: AppContext, user: CurrentUser, member_id: int) -> MemberRow:
    with ctx.session() as session:
        member = managed_member(session, user, member_id)
        if member.id == user.id:
            raise InvalidInput(_("You cannot deactivate your own account."))
        set_active(session, member, False)
        return member_row(session, member)


def reactivate(ctx: AppContext, user: CurrentUser, member_id: int) -> MemberRow:
    with ctx.session() as session:
        member = managed_member(session, user, member_id)
        set_active(session, member, True)
        return member_row(session, member)


def check_manager(session: Session, org_id: int, member: User, manager_id: int | None) -> User | None:
    """The manager to assign to ``member``: an active manager or admin of the same organisation,
    not the member, and not someone who reports (directly or not) to the member."""
    if manager_id is None:
        return None
    manager = session.get(User, manager_id)
    if manager is None or manager.org_id != org_id or manager.deleted_at is not None:
        raise NotFound(_("No member with id %(id)s in your organisation.") % {"id": manager_id})
    if manager.id == member.id:
        raise InvalidInput(_("A member cannot be their own manager."))
    if manager.deactivated_at is not None:
        raise InvalidInput(_("A deactivated member cannot be a manager."))
    if manager.role not in MANAGER_ROLES:
        raise InvalidInput(_("Only members with the manager or admin role can be a manager."))
    seen: set[int] = set()
    step: User | None = manager
    while step is not None and step.manager_id is not None and step.id not in seen:
        seen.add(step.id)
        if step.manager_id == member.id:
            raise InvalidInput(_("This would make a loop in the reporting lines."))
        step = session.get(User, step.manager_id)
    return manager


def set_manager(ctx: AppContext, user: CurrentUser, member_id: int, manager_id: int | None) -> MemberRow:
    with ctx.session() as session:
        member = managed_member(session, user, member_id)
        manager = check_manager(session, user.org_id, member, manager_id)
        member.manager_id = manager.id if manager else None
        return member_row(session, member)


def set_team(ctx: AppContext, user: CurrentUser, member_id: int, team_id: int | None) -> MemberRow:
    """Put a member in a team chosen from the list (or in none). A team admin moves people only
    between their own teams, or out of them."""
    with ctx.session() as session:
        only = require_people_admin(session, user)
        member = managed_member(session, user, member_id)
        if team_id is not None:
            team = team_of_org(session, user.org_id, team_id)
            if only is not None and team.id not in only:
                raise NotFound(_("No team with id %(id)s in your organisation.") % {"id": team_id})
        member.team_id = team_id
        return member_row(session, member)


def create_member(
    session: Session,
    org_id: int,
    *,
    email: str,
    name: str,
    role: str = "learner",
    team_id: int | None = None,
    manager_id: int | None = None,
    external_id: str | None = None,
    locale: str = "en",
    ctx: AppContext | None = None,
) -> User:
    """A new member without a password (they set one through an invitation, or use SSO).
    ``ctx``: the ``member.provisioned`` webhooks are enqueued now (else by the next sweep)."""
    user = auth.create_user(
        session,
        org_id=org_id,
        email=email,
        name=name,
        password=secrets.token_urlsafe(16),
        password_hash=NO_PASSWORD,
        role=role,
        team_id=team_id,
        locale=locale if locale in ("en", "zh_CN") else "en",
    )
    user.manager_id = manager_id
    user.external_id = external_id
    webhooks.member_provisioned(session, user, ctx)
    return user


# --- CSV import ---------------------------------------------------------------------------

"""The member directory and the one place members are created and changed.

Pages, the API, CSV import, SCIM and single sign-on all call these functions. Admins manage the
whole organisation; a team admin manages the members of their teams only (see ``teams``).
Deactivating a member ends every login and API token of theirs in the same transaction, and
``auth.resolve`` refuses a deactivated member's token on the next request.
"""

from __future__ import annotations

import csv
import io
import secrets
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from learnloop.errors import Conflict, Forbidden, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.services import auth
from learnloop.services.auth import EMAIL_RE, ROLES, CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.people import webhooks
from learnloop.services.people.teams import find_team, require_people_admin, team_of_org
from learnloop.store.models import Team, User, utcnow

#: An account that has never set a password: no password verifies against it (Argon2 refuses
#: the hash), so the person logs in through an invitation link or single sign-on.
NO_PASSWORD = "!no-password"
#: roles whose holders can be someone's manager (they see their reports' individual figures)
MANAGER_ROLES = ("manager", "admin")
#: the most rows one CSV import takes (larger files: split them)
MAX_IMPORT_ROWS = 5000
IMPORT_COLUMNS = ("email", "name", "role", "team", "manager_email")

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


class ImportReport(BaseModel):
    dry_run: bool
    rows: int
    created: int
    problems: list[str]
    member_ids: list[int] = []


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            _("The file is not UTF-8 text (line %(line)s). Save it as CSV UTF-8 and try again.")
            % {"line": line},
            details=[_("line %(line)s: not UTF-8") % {"line": line}],
        ) from None


def import_csv(
    ctx: AppContext, admin: CurrentUser, data: bytes | str, *, dry_run: bool, invite: bool = False
) -> ImportReport:
    """Check (``dry_run``) or import a CSV of people: columns ``email,name`` and optionally
    ``role,team,manager_email``. Every problem is listed with its line; a file with any problem
    imports nothing (422 listing them all), and a clean file is imported in one transaction."""
    admin.require("admin")
    text = _decode(data) if isinstance(data, bytes) else data
    if "\x00" in text:
        raise InvalidInput(_("The file is not a CSV text file."))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InvalidInput(_("The file is empty.")) from None
    except csv.Error as exc:
        raise InvalidInput(_("line 1: not valid CSV (%(error)s)") % {"error": exc}) from None
    problems: list[str] = []
    unknown = [h for h in header if h not in IMPORT_COLUMNS]
    missing = [c for c in ("email", "name") if c not in header]
    if unknown:
        problems.append(
            _("line 1: unknown columns %(cols)s (allowed: %(allowed)s)")
            % {"cols": ", ".join(unknown), "allowed": ", ".join(IMPORT_COLUMNS)}
        )
    if missing:
        problems.append(_("line 1: missing columns %(cols)s") % {"cols": ", ".join(missing)})
    if len(set(header)) != len(header):
        problems.append(_("line 1: a column is named twice"))
    if problems:
        raise InvalidInput("; ".join(problems), details=problems)
    rows: list[tuple[int, dict[str, str]]] = []
    found: list[tuple[int, str]] = []
    try:
        for values in reader:
            if len(rows) >= MAX_IMPORT_ROWS:
                raise InvalidInput(
                    _("The file has more than %(max)s people; split it into smaller files.")
                    % {"max": MAX_IMPORT_ROWS}
                )
            if not any(v.strip() for v in values):
                continue
            line = reader.line_num
            if len(values) != len(header):
                message = _("line %(line)s: %(got)s fields, expected %(want)s")
                found.append((line, message % {"line": line, "got": len(values), "want": len(header)}))
                continue
            rows.append((line, {h: v.strip() for h, v in zip(header, values, strict=True)}))
    except csv.Error as exc:
        message = _("line %(line)s: not valid CSV (%(error)s)")
        found.append((reader.line_num, message % {"line": reader.line_num, "error": exc}))
    try:
        return _import_rows(ctx, admin, rows, found, dry_run, invite)
    except IntegrityError:  # someone took an address in the meantime: nothing was imported
        raise Conflict(_("The organisation changed during the import; nothing was imported.")) from None


def _import_rows(
    ctx: AppContext,
    admin: CurrentUser,
    rows: list[tuple[int, dict[str, str]]],
    found: list[tuple[int, str]],
    dry_run: bool,
    invite: bool = False,
) -> ImportReport:
    with ctx.session() as session:
        found = found + _check_rows(session, admin.org_id, rows)
        problems = [message for _line, message in sorted(found, key=lambda p: p[0])]
        if problems:
            if dry_run:
                return ImportReport(dry_run=True, rows=len(rows), created=0, problems=problems)
            raise InvalidInput(
                _("Nothing was imported: the file has %(n)s problems.") % {"n": len(problems)},
                details=problems,
            )
        if dry_run:
            return ImportReport(dry_run=True, rows=len(rows), created=0, problems=[])
        created = _create_rows(session, admin.org_id, rows, ctx)
        if invite:  # each new person gets an invitation e-mail, in the same transaction
            from learnloop.services.people.invitations import send_invitation

            for member_id in created:
                member = session.get(User, member_id)
                assert member is not None
                send_invitation(ctx, session, admin, member)
        return ImportReport(
            dry_run=False, rows=len(rows), created=len(created), problems=[], member_ids=created
        )


def _check_rows(
    session: Session, org_id: int, rows: list[tuple[int, dict[str, str]]]
) -> list[tuple[int, str]]:
    problems: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        email = row["email"].lower()
        if not EMAIL_RE.match(email) or len(email) > 254:
            message = _("line %(line)s: %(email)s is not a valid e-mail address")
            problems.append((line, message % {"line": line, "email": row["email"]}))
        elif email in first_line:
            message = _("line %(line)s: %(email)s is already on line %(first)s")
            problems.append((line, message % {"line": line, "email": email, "first": first_line[email]}))
        else:
            first_line[email] = line
        if not row["name"] or len(row["name"]) > 200:
            problems.append(
                (line, _("line %(line)s: a name of 1-200 characters is required") % {"line": line})
            )
        role = row.get("role") or "learner"
        if role not in ROLES:
            message = _("line %(line)s: unknown role %(role)s (one of: %(roles)s)")
            problems.append((line, message % {"line": line, "role": role, "roles": ", ".join(ROLES)}))
        team = row.get("team", "")
        if team and find_team(session, org_id, team) is None:
            message = _("line %(line)s: no team named %(team)s (create it first)")
            problems.append((line, message % {"line": line, "team": team}))
    for email in _taken_emails(session, list(first_line)):
        message = _("line %(line)s: an account with %(email)s already exists")
        problems.append((first_line[email], message % {"line": first_line[email], "email": email}))
    in_file = {row["email"].lower(): row.get("role") or "learner" for _line, row in rows}
    not_manager = _("line %(line)s: %(email)s needs the manager or admin role to be a manager")
    for line, row in rows:
        manager = row.get("manager_email", "").lower()
        if not manager:
            continue
        if manager == row["email"].lower():
            problems.append((line, _("line %(line)s: a member cannot be their own manager") % {"line": line}))
        elif manager in in_file:
            if in_file[manager] not in MANAGER_ROLES:
                problems.append((line, not_manager % {"line": line, "email": manager}))
        else:
            found = session.scalars(
                select(User).where(
                    func.lower(User.email) == manager, User.org_id == org_id, User.deleted_at.is_(None)
                )
            ).first()
            if found is None:
                message = _("line %(line)s: no member with e-mail %(email)s (manager)")
                problems.append((line, message % {"line": line, "email": manager}))
            elif found.role not in MANAGER_ROLES or found.deactivated_at is not None:
                problems.append((line, not_manager % {"line": line, "email": manager}))
    return problems


def _taken_emails(session: Session, emails: list[str]) -> set[str]:
    taken: set[str] = set()
    for start in range(0, len(emails), 500):
        chunk = emails[start : start + 500]
        taken |= set(session.scalars(select(func.lower(User.email)).where(func.lower(User.email).in_(chunk))))
    return taken


def _create_rows(
    session: Session, org_id: int, rows: list[tuple[int, dict[str, str]]], ctx: AppContext | None = None
) -> list[int]:
    users: dict[str, User] = {}
    for _line, row in rows:
        team = find_team(session, org_id, row["team"]) if row.get("team") else None
        users[row["email"].lower()] = create_member(
            session,
            org_id,
            email=row["email"],
            name=row["name"],
            role=row.get("role") or "learner",
            team_id=team.id if team else None,
            ctx=ctx,
        )
    for _line, row in rows:
        manager = row.get("manager_email", "").lower()
        if manager:
            target = (
                users.get(manager)
                or session.scalars(
                    select(User).where(func.lower(User.email) == manager, User.org_id == org_id)
                ).first()
            )
            if target is None:  # checked above; a concurrent change is refused whole
                raise Conflict(_("The organisation changed during the import; nothing was imported."))
            users[row["email"].lower()].manager_id = target.id
    session.flush()
    return [u.id for u in users.values()]

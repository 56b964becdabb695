"""Bulk import of people from CSV: a dry run lists every problem by line, and a clean file is
imported in one transaction (optionally inviting each new person by e-mail in it).

Members are created through ``provisioning``, invitations sent through ``invitations``; this
module only reads the file and checks it, so neither of those needs the other.
"""

from __future__ import annotations

import csv
import io

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from learnloop.errors import Conflict, InvalidInput
from learnloop.i18n import _
from learnloop.services.auth import EMAIL_RE, ROLES, CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.people.invitations import send_invitation
from learnloop.services.people.provisioning import MANAGER_ROLES, create_member
from learnloop.services.people.teams import find_team
from learnloop.store.models import User

MAX_IMPORT_ROWS = 5000
IMPORT_COLUMNS = ("email", "name", "role", "team", "manager_email")


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

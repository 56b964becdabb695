"""Invitations by e-mail: an admin invites a person, who sets a password through the link.

The link carries a random token; only its SHA-256 is stored. It works once, for
``invitation_days`` days; inviting again sends a new link. An invited account has no usable
password until the link is used (or the person signs in by SSO).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from learnloop.errors import Conflict, NotFound
from learnloop.i18n import _
from learnloop.services import auth
from learnloop.services.auth import CurrentUser, LoginResult
from learnloop.services.context import AppContext
from learnloop.services.people import mail
from learnloop.services.people.provisioning import NO_PASSWORD, MemberRow, create_member, member_row
from learnloop.services.people.teams import team_of_org
from learnloop.store.models import Invitation, Organisation, User, UtcDateTime, as_utc, utcnow


class InvitationOut(BaseModel):
    member: MemberRow
    expires_at: UtcDateTime


class InvitationView(BaseModel):
    name: str
    email: str
    organisation: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def invite(
    ctx: AppContext,
    admin: CurrentUser,
    *,
    email: str,
    name: str,
    role: str = "learner",
    team_id: int | None = None,
) -> InvitationOut:
    """Create the member (if new) and e-mail them a link to set their password."""
    admin.require("admin")
    email = email.strip().lower()
    with ctx.session() as session:
        if team_id is not None:
            team_of_org(session, admin.org_id, team_id)
        member = session.scalars(select(User).where(func.lower(User.email) == email)).first()
        if member is not None and (
            member.org_id != admin.org_id
            or member.deleted_at is not None
            or member.password_hash != NO_PASSWORD
        ):
            raise Conflict(_("This person already has an account."))
        if member is None:
            member = create_member(
                session, admin.org_id, email=email, name=name, role=role, team_id=team_id, ctx=ctx
            )
        expires = send_invitation(ctx, session, admin, member)
        return InvitationOut(member=member_row(session, member), expires_at=expires)


def send_invitation(ctx: AppContext, session: Session, admin: CurrentUser, member: User) -> datetime:
    """Make an invitation link for ``member`` and queue its e-mail, in the caller's transaction;
    when the link expires."""
    token = secrets.token_urlsafe(32)
    org = session.get(Organisation, member.org_id)
    assert org is not None
    expires = utcnow() + timedelta(days=ctx.settings.invitation_days)
    session.add(
        Invitation(token_hash=_hash(token), org_id=member.org_id, user_id=member.id, expires_at=expires)
    )
    link = f"{ctx.settings.public_url.rstrip('/')}/invite/{token}"
    with mail.in_locale(admin.locale):
        subject = _("You are invited to %(org)s on Learnloop") % {"org": org.name}
        body = _(
            "Hello %(name)s,\n\n%(inviter)s invites you to %(org)s on Learnloop. Set your password "
            "here (the link works once, for %(days)s days):\n%(link)s\n"
        ) % {
            "name": member.name,
            "inviter": admin.name,
            "org": org.name,
            "days": ctx.settings.invitation_days,
            "link": link,
        }
    mail.queue(
        ctx,
        session,
        org_id=member.org_id,
        user_id=member.id,
        to=member.email,
        kind="invitation",
        subject=subject,
        body=body,
    )
    return expires


def _open(session: Session, token: str) -> tuple[Invitation, User]:
    found = session.get(Invitation, _hash(token)) if token else None
    if found is None or found.used_at is not None or as_utc(found.expires_at) <= utcnow():
        raise NotFound(_("This invitation link is not valid any more. Ask your admin for a new one."))
    member = session.get(User, found.user_id)
    if member is None or member.deleted_at is not None or member.deactivated_at is not None:
        raise NotFound(_("This invitation link is not valid any more. Ask your admin for a new one."))
    return found, member


def view(ctx: AppContext, token: str) -> InvitationView:
    with ctx.session() as session:
        _found, member = _open(session, token)
        org = session.get(Organisation, member.org_id)
        assert org is not None
        return InvitationView(name=member.name, email=member.email, organisation=org.name)


def accept(ctx: AppContext, token: str, password: str) -> LoginResult:
    """Set the invited person's password (the policy applies) and log them in; the link is spent."""
    with ctx.session() as session:
        _found, member = _open(session, token)
        email, name = member.email, member.name
    auth.check_new_password(ctx, password, email=email, name=name)
    password_hash = auth.hash_password(password)
    with ctx.session() as session:
        found, member = _open(session, token)
        found.used_at = utcnow()
        member.password_hash = password_hash
        return auth.login_as(ctx, session, member)

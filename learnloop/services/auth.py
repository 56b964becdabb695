"""Accounts, organisations and login sessions.

Passwords are hashed with Argon2id. A login is a random token: the browser holds it in an
HttpOnly cookie, an API client sends it as a bearer token; the database keeps only its
SHA-256. Each login has its own CSRF token for forms and cookie-authenticated API writes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from learnloop.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from learnloop.i18n import _
from learnloop.services.context import AppContext
from learnloop.store.models import AuthSession, Organisation, Team, User, as_utc, utcnow

ROLES = ("learner", "instructor", "manager", "admin")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()


class CurrentUser(BaseModel):
    id: int
    org_id: int
    org_name: str
    team_id: int | None
    email: str
    name: str
    role: str
    locale: str
    csrf_token: str = ""

    def require(self, *roles: str) -> None:
        if self.role not in roles and self.role != "admin":
            raise Forbidden(_("Your role does not allow this."))


class LoginResult(BaseModel):
    token: str
    csrf_token: str
    user: CurrentUser


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "org"


def create_organisation(session: Session, name: str, slug: str | None = None) -> Organisation:
    name = name.strip()
    if not name:
        raise InvalidInput(_("An organisation name is required."))
    base = slug or _slug(name)
    candidate, n = base, 1
    while session.execute(select(Organisation.id).where(Organisation.slug == candidate)).first():
        n += 1
        candidate = f"{base}-{n}"
    org = Organisation(name=name, slug=candidate, join_code=secrets.token_urlsafe(9))
    session.add(org)
    session.flush()
    return org


def default_organisation(session: Session) -> Organisation:
    org = session.execute(select(Organisation).where(Organisation.slug == "default")).scalars().first()
    if org is None:
        org = create_organisation(session, "Learnloop", slug="default")
    return org


def get_or_create_team(session: Session, org_id: int, name: str) -> Team:
    team = session.execute(select(Team).where(Team.org_id == org_id, Team.name == name)).scalars().first()
    if team is None:
        team = Team(org_id=org_id, name=name)
        session.add(team)
        session.flush()
    return team


def _validate_signup(email: str, name: str, password: str) -> tuple[str, str]:
    email = email.strip().lower()
    name = name.strip()
    problems = []
    if not EMAIL_RE.match(email) or len(email) > 254:
        problems.append(_("A valid email address is required."))
    if not name or len(name) > 200:
        problems.append(_("A name of 1-200 characters is required."))
    if len(password) < 8 or len(password) > 200:
        problems.append(_("The password needs 8-200 characters."))
    if problems:
        raise InvalidInput("; ".join(problems), details=problems)
    return email, name


def create_user(
    session: Session,
    *,
    org_id: int,
    email: str,
    name: str,
    password: str,
    role: str = "learner",
    team_id: int | None = None,
    locale: str = "en",
    is_simulated: bool = False,
    password_hash: str | None = None,
) -> User:
    email, name = _validate_signup(email, name, password)
    if role not in ROLES:
        raise InvalidInput(_("The role must be one of: %(roles)s.") % {"roles": ", ".join(ROLES)})
    if session.execute(select(User.id).where(func.lower(User.email) == email)).first():
        raise Conflict(_("An account with this email already exists."))
    user = User(
        org_id=org_id,
        email=email,
        name=name,
        password_hash=password_hash or hash_password(password),
        role=role,
        team_id=team_id,
        locale=locale,
        is_simulated=is_simulated,
    )
    session.add(user)
    session.flush()
    return user


def _current(session: Session, user: User, csrf: str = "") -> CurrentUser:
    org = session.get(Organisation, user.org_id)
    assert org is not None
    return CurrentUser(
        id=user.id,
        org_id=user.org_id,
        org_name=org.name,
        team_id=user.team_id,
        email=user.email,
        name=user.name,
        role=user.role,
        locale=user.locale,
        csrf_token=csrf,
    )


def _new_session(ctx: AppContext, session: Session, user: User) -> LoginResult:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    session.add(
        AuthSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            csrf_token=csrf,
            expires_at=utcnow() + timedelta(days=ctx.settings.session_days),
        )
    )
    session.flush()
    return LoginResult(token=token, csrf_token=csrf, user=_current(session, user, csrf))


def signup(
    ctx: AppContext, *, email: str, name: str, password: str, join_code: str = "", locale: str = "en"
) -> LoginResult:
    """Create a learner account (in the organisation of ``join_code``, else the default one)."""
    with ctx.session() as session:
        if join_code.strip():
            org = (
                session.execute(select(Organisation).where(Organisation.join_code == join_code.strip()))
                .scalars()
                .first()
            )
            if org is None:
                raise NotFound(_("No organisation has this join code."))
        else:
            org = default_organisation(session)
        user = create_user(
            session,
            org_id=org.id,
            email=email,
            name=name,
            password=password,
            locale=locale if locale in ("en", "zh_CN") else "en",
        )
        return _new_session(ctx, session, user)


def login(ctx: AppContext, *, email: str, password: str) -> LoginResult:
    with ctx.session() as session:
        user = (
            session.execute(
                select(User).where(func.lower(User.email) == email.strip().lower(), User.deleted_at.is_(None))
            )
            .scalars()
            .first()
        )
        try:
            if user is None:
                raise VerificationError()
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            raise Unauthorized(_("Wrong email or password.")) from None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return _new_session(ctx, session, user)


def logout(ctx: AppContext, token: str) -> None:
    with ctx.session() as session:
        session.execute(delete(AuthSession).where(AuthSession.token_hash == _token_hash(token)))


def resolve(ctx: AppContext, token: str | None) -> CurrentUser | None:
    """The user a session token belongs to, or None when it is missing, unknown or expired."""
    if not token:
        return None
    with ctx.session() as session:
        auth = session.get(AuthSession, _token_hash(token))
        if auth is None or as_utc(auth.expires_at) < utcnow():
            return None
        user = session.get(User, auth.user_id)
        if user is None or user.deleted_at is not None:
            return None
        return _current(session, user, auth.csrf_token)


def check_csrf(user: CurrentUser, supplied: str | None) -> None:
    if not supplied or not hmac.compare_digest(user.csrf_token, supplied):
        raise Forbidden(
            _(
                "The form has expired or did not come from this site (CSRF check failed); reload and try again."
            )
        )


def set_locale(ctx: AppContext, user: CurrentUser, locale: str) -> None:
    if locale not in ("en", "zh_CN"):
        raise InvalidInput(_("The language must be en or zh_CN."))
    with ctx.session() as session:
        row = session.get(User, user.id)
        assert row is not None
        row.locale = locale

"""Accounts, organisations and login sessions.

Passwords are hashed with Argon2id. A login is a random token: the browser holds it in an
HttpOnly cookie, an API client sends it as a bearer token; the database keeps only its
SHA-256. Each login has its own CSRF token for forms and cookie-authenticated API writes. A login
ends ``session_days`` after it started, or ``session_idle_minutes`` after its last request.

Neither login nor sign-up tells whether an account exists: a login for an unknown address runs
the same Argon2 verification against a stand-in hash and gets the same message; a sign-up hashes
the password before it looks the address up, and a taken address gets a message that does not say
so and counts as a failed login attempt (see :mod:`learnloop.services.throttle`). Full secrecy at
sign-up needs e-mail verification, which this installation does not send (docs/operations.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from learnloop.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from learnloop.i18n import _
from learnloop.services import passwords, throttle
from learnloop.services.context import AppContext
from learnloop.store.models import (
    AuthSession,
    Organisation,
    OrgIdentity,
    Team,
    TeamAdmin,
    User,
    as_utc,
    team_name_key,
    utcnow,
)

ROLES = ("learner", "instructor", "manager", "admin")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()
#: Argon2 takes 64 MiB a hash: at most this many run at once, however many requests arrive
_hash_slots = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))


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
    #: administers at least one team (delegated by an admin): sees the people pages of those teams
    team_admin: bool = False

    def require(self, *roles: str) -> None:
        if self.role not in roles and self.role != "admin":
            raise Forbidden(_("Your role does not allow this."))


class LoginResult(BaseModel):
    token: str
    csrf_token: str
    user: CurrentUser


def hash_password(password: str) -> str:
    with _hash_slots:
        return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> None:
    with _hash_slots:
        _hasher.verify(password_hash, password)


@cache
def _stand_in_hash() -> str:
    """A hash no password matches: unknown accounts are verified against it, taking the same time."""
    return hash_password(secrets.token_urlsafe(32))


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
    """The organisation's team of this name (compared by :func:`team_name_key`), created if new;
    for the demo and provisioning. People are put in teams chosen from a list
    (:mod:`learnloop.services.people.teams`)."""
    name = " ".join(name.split())
    key = team_name_key(name)
    team = session.execute(select(Team).where(Team.org_id == org_id, Team.name_key == key)).scalars().first()
    if team is None:
        team = Team(org_id=org_id, name=name, name_key=key)
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
        team_admin=session.execute(select(TeamAdmin.team_id).where(TeamAdmin.user_id == user.id)).first()
        is not None,
    )


def _deadline(ctx: AppContext, started: datetime, now: datetime) -> datetime:
    """When a login started at ``started`` ends if no request comes after ``now``."""
    end = started + timedelta(days=ctx.settings.session_days)
    idle = ctx.settings.session_idle_minutes
    return min(end, now + timedelta(minutes=idle)) if idle > 0 else end


def _new_session(ctx: AppContext, session: Session, user: User) -> LoginResult:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    now = utcnow()
    session.add(
        AuthSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=_deadline(ctx, now, now),
        )
    )
    session.flush()
    return LoginResult(token=token, csrf_token=csrf, user=_current(session, user, csrf))


def check_new_password(ctx: AppContext, password: str, *, email: str, name: str) -> None:
    """Refuse a password a person chose if it is short, common, leaked or their own details."""
    found = passwords.problems(password, email=email, name=name, min_score=ctx.settings.password_min_score)
    if found:
        raise InvalidInput("; ".join(found), details=found)


def _signup_refused() -> Conflict:
    return Conflict(
        _(
            "We could not create an account with these details. If you already have an account, "
            "log in instead."
        )
    )


def signup(
    ctx: AppContext,
    *,
    email: str,
    name: str,
    password: str,
    join_code: str = "",
    locale: str = "en",
    address: str | None = None,
) -> LoginResult:
    """Create a learner account (in the organisation of ``join_code``, else the default one).

    ``address`` is the client's network address, for the throttle."""
    email, name = _validate_signup(email, name, password)
    check_new_password(ctx, password, email=email, name=name)
    budgets = throttle.login_budgets(ctx, email, address)
    throttle.spend(ctx, budgets)
    # hashed before the address is looked up: a taken address takes as long as a free one
    password_hash = hash_password(password)
    try:
        result = _create_learner(ctx, email, name, password, password_hash, join_code, locale)
    except IntegrityError:  # the same address signed up at the same moment
        raise _signup_refused() from None
    throttle.refund(ctx, budgets)
    return result


def _create_learner(
    ctx: AppContext, email: str, name: str, password: str, password_hash: str, join_code: str, locale: str
) -> LoginResult:
    with ctx.session() as session:
        if session.execute(select(User.id).where(func.lower(User.email) == email)).first():
            raise _signup_refused()
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
        identity = session.get(OrgIdentity, org.id)
        if identity is not None and identity.sso_only:
            raise Forbidden(
                _("Your organisation signs in with single sign-on; use it instead of a password.")
            )
        user = create_user(
            session,
            org_id=org.id,
            email=email,
            name=name,
            password=password,
            password_hash=password_hash,
            locale=locale if locale in ("en", "zh_CN") else "en",
        )
        return _new_session(ctx, session, user)


def login(ctx: AppContext, *, email: str, password: str, address: str | None = None) -> LoginResult:
    """Log in; unknown address or wrong password get the same message after the same work.

    Throttled per e-mail address and per client ``address``: past the limit, HTTP 429."""
    stand_in = _stand_in_hash()
    budgets = throttle.login_budgets(ctx, email, address)
    throttle.spend(ctx, budgets)
    with ctx.session() as session:
        user = (
            session.execute(
                select(User).where(func.lower(User.email) == email.strip().lower(), User.deleted_at.is_(None))
            )
            .scalars()
            .first()
        )
        try:
            _verify(user.password_hash if user is not None else stand_in, password)
            if user is None:
                raise VerificationError()
        except (VerificationError, InvalidHashError):
            raise Unauthorized(_("Wrong email or password.")) from None
        if user.deactivated_at is not None:
            raise Unauthorized(_("This account is deactivated. Ask your organisation's admin."))
        identity = session.get(OrgIdentity, user.org_id)
        if identity is not None and identity.sso_only:
            raise Unauthorized(
                _("Your organisation signs in with single sign-on; use it instead of a password.")
            )
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        result = _new_session(ctx, session, user)
    throttle.refund(ctx, budgets)
    return result


def login_as(ctx: AppContext, session: Session, user: User) -> LoginResult:
    """A login for a person identified another way (single sign-on, an invitation link)."""
    return _new_session(ctx, session, user)


def logout(ctx: AppContext, token: str) -> None:
    with ctx.session() as session:
        session.execute(delete(AuthSession).where(AuthSession.token_hash == _token_hash(token)))


#: the login lookup of :func:`resolve`, built once (building it per request cost more CPU than
#: running it): the login, its person, their organisation's name, whether they administer a team
_LOGIN_LOOKUP = (
    select(
        AuthSession.csrf_token,
        AuthSession.created_at,
        AuthSession.expires_at,
        User.id,
        User.org_id,
        Organisation.name,
        User.team_id,
        User.email,
        User.name,
        User.role,
        User.locale,
        User.deleted_at,
        User.deactivated_at,
        select(TeamAdmin.team_id).where(TeamAdmin.user_id == User.id).exists(),
    )
    .join(User, User.id == AuthSession.user_id)
    .join(Organisation, Organisation.id == User.org_id)
    .where(AuthSession.token_hash == bindparam("token_hash"))
)


def resolve(ctx: AppContext, token: str | None) -> CurrentUser | None:
    """The user a session token belongs to, or None when it is missing, unknown or expired.

    Runs on every request: the login, its person, their organisation's name and whether they
    administer a team are read in one statement by the token's primary key (no ORM objects);
    the only writes are dropping an expired login and sliding the idle deadline, at most
    about once a minute per login. Each statement commits on its own (``ctx.autocommit``): on
    PostgreSQL no BEGIN and COMMIT round trips around the read."""
    if not token:
        return None
    now = utcnow()
    key = _token_hash(token)
    with ctx.autocommit() as conn:
        row = conn.execute(_LOGIN_LOOKUP, {"token_hash": key}).first()
        if row is None:
            return None
        csrf, created_at, expires_at, user_id, org_id, org_name, team_id = row[:7]
        email, name, role, locale, deleted_at, deactivated_at, team_admin = row[7:]
        if as_utc(expires_at) <= now:
            conn.execute(delete(AuthSession).where(AuthSession.token_hash == key))
            return None
        if deleted_at is not None or deactivated_at is not None:
            return None
        # slide the idle deadline, writing at most about once a minute per login
        deadline = _deadline(ctx, as_utc(created_at), now)
        step = timedelta(minutes=min(1.0, ctx.settings.session_idle_minutes / 10))
        if deadline - as_utc(expires_at) > step:
            conn.execute(update(AuthSession).where(AuthSession.token_hash == key).values(expires_at=deadline))
        return CurrentUser(
            id=user_id,
            org_id=org_id,
            org_name=org_name,
            team_id=team_id,
            email=email,
            name=name,
            role=role,
            locale=locale,
            csrf_token=csrf,
            team_admin=bool(team_admin),
        )


def revoke_sessions(session: Session, user_id: int) -> int:
    """End every login (web session and API token) of a person at once; how many ended."""
    result = session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


def same_secret(expected: str, supplied: str | None) -> bool:
    """Constant-time comparison that also takes any text an attacker sends (non-ASCII included)."""
    if not expected or not supplied:
        return False
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), supplied.encode("utf-8", "surrogatepass")
    )


def check_csrf(user: CurrentUser, supplied: str | None) -> None:
    if not same_secret(user.csrf_token, supplied):
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

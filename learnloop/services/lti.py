"""LTI 1.3 tool: platform registration, OIDC login, launches, Deep Linking and score passback.

Translation and verification live in ``interop/lti.py``; this module stores and fetches. A
platform belongs to the organisation whose admin registered it, and every account it launches
into is created in (and only ever linked within) that organisation. Every launch that does not
verify raises ``LtiForbidden`` (HTTP 403), never a server error.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from learnloop.content.models import LEVEL_MASTERY
from learnloop.errors import Conflict, Forbidden, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.interop import lti
from learnloop.services import auth
from learnloop.services.auth import CurrentUser, LoginResult
from learnloop.services.context import AppContext
from learnloop.services.enrolment import current_role
from learnloop.store.models import Assessment, Enrolment, Mastery, Organisation, User, as_utc, utcnow
from learnloop.store.models_interop import LtiGradeLink, LtiPlatform, LtiState, LtiToolKey, LtiUserLink

log = logging.getLogger(__name__)
HTTP_TIMEOUT_S = 10.0


class LtiForbidden(Forbidden):
    """A launch, login or deep-linking answer that does not verify."""


def _refuse(exc: lti.LtiError) -> LtiForbidden:
    log.info("LTI refused: %s", exc)  # the reason only: never a token or a key
    # the reason (English, technical) goes in the details; the message is the user's
    return LtiForbidden(
        _("This launch could not be verified. Start again from your course."), details=[str(exc)]
    )


class PlatformView(BaseModel):
    id: int
    name: str
    issuer: str
    client_id: str
    deployment_ids: list[str]
    auth_login_url: str
    auth_token_url: str
    jwks_url: str


class ToolUrls(BaseModel):
    login_url: str
    launch_url: str
    jwks_url: str


class LtiAdminView(BaseModel):
    tool: ToolUrls
    platforms: list[PlatformView]


class LaunchOutcome(BaseModel):
    login: LoginResult
    #: where the browser goes next (a path on this site)
    redirect: str
    #: deep linking: the state of the instructor's choice (None for a resource-link launch)
    deep_link_state: str | None = None


class Choice(BaseModel):
    #: practice:<skill> | lesson:<lesson id> | check:<role>
    target: str
    title: str
    graded: bool


class PassbackReport(BaseModel):
    sent: int = 0
    failed: int = 0
    skipped: int = 0


def _view(p: LtiPlatform) -> PlatformView:
    return PlatformView(
        id=p.id,
        name=p.name,
        issuer=p.issuer,
        client_id=p.client_id,
        deployment_ids=[str(d) for d in p.deployment_ids],
        auth_login_url=p.auth_login_url,
        auth_token_url=p.auth_token_url,
        jwks_url=p.jwks_url,
    )


def _org_slug(session: Session, org_id: int) -> str:
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound(_("No such organisation."))
    return org.slug


def tool_urls(base_url: str, slug: str) -> ToolUrls:
    base = base_url.rstrip("/")
    return ToolUrls(
        login_url=f"{base}/lti/login", launch_url=f"{base}/lti/launch", jwks_url=f"{base}/lti/jwks/{slug}"
    )


def _tool_key(session: Session, org_id: int) -> lti.ToolKey:
    row = session.get(LtiToolKey, org_id)
    if row is None:
        fresh = lti.new_tool_key()
        row = LtiToolKey(
            org_id=org_id, kid=fresh.kid, private_pem=fresh.private_pem, public_jwk=fresh.public_jwk
        )
        session.add(row)
        session.flush()
    return lti.ToolKey(kid=row.kid, private_pem=row.private_pem, public_jwk=dict(row.public_jwk))


def admin_view(ctx: AppContext, user: CurrentUser, base_url: str) -> LtiAdminView:
    user.require("admin")
    with ctx.session() as session:
        platforms = session.scalars(
            select(LtiPlatform).where(LtiPlatform.org_id == user.org_id).order_by(LtiPlatform.id)
        )
        return LtiAdminView(
            tool=tool_urls(base_url, _org_slug(session, user.org_id)), platforms=[_view(p) for p in platforms]
        )


def _url(value: str, what: str) -> str:
    value = value.strip()
    if len(value) > 500:
        raise InvalidInput(_("The %(what)s is too long.") % {"what": what})
    try:
        return lti.check_url(value, what)
    except lti.LtiError:
        raise InvalidInput(_("The %(what)s must be an absolute http(s) URL.") % {"what": what}) from None


def register_platform(
    ctx: AppContext,
    user: CurrentUser,
    *,
    name: str,
    issuer: str,
    client_id: str,
    deployment_ids: list[str],
    auth_login_url: str,
    auth_token_url: str,
    jwks_url: str,
) -> PlatformView:
    """An admin registers a platform for their organisation (and gets the tool key made)."""
    user.require("admin")
    name, client_id = name.strip(), client_id.strip()
    deployments = sorted({d.strip() for d in deployment_ids if d.strip()})
    if not name or len(name) > 200:
        raise InvalidInput(_("Give the platform a name (at most 200 characters)."))
    if not client_id or len(client_id) > 200:
        raise InvalidInput(_("The client id is required (at most 200 characters)."))
    if not deployments or any(len(d) > 255 for d in deployments):
        raise InvalidInput(_("Give at least one deployment id."))
    issuer = _url(issuer, _("issuer"))
    row = LtiPlatform(
        org_id=user.org_id,
        name=name,
        issuer=issuer,
        client_id=client_id,
        deployment_ids=deployments,
        auth_login_url=_url(auth_login_url, _("login URL")),
        auth_token_url=_url(auth_token_url, _("token URL")),
        jwks_url=_url(jwks_url, _("key set URL")),
    )
    try:
        with ctx.session() as session:
            taken = session.scalar(
                select(LtiPlatform.id).where(LtiPlatform.issuer == issuer, LtiPlatform.client_id == client_id)
            )
            if taken is not None:
                raise Conflict(_("This platform (issuer and client id) is registered already."))
            session.add(row)
            _tool_key(session, user.org_id)
            session.flush()
            return _view(row)
    except IntegrityError:
        raise Conflict(_("This platform (issuer and client id) is registered already.")) from None


def delete_platform(ctx: AppContext, user: CurrentUser, platform_id: int) -> None:
    user.require("admin")
    with ctx.session() as session:
        row = session.get(LtiPlatform, platform_id)
        if row is None or row.org_id != user.org_id:
            raise NotFound(_("No such platform."))
        for table in (LtiGradeLink, LtiUserLink, LtiState):
            for linked in session.scalars(select(table).where(table.platform_id == row.id)):
                session.delete(linked)
        session.delete(row)


def jwks(ctx: AppContext, org_slug: str) -> dict[str, Any]:
    """The organisation's public tool key set (public: platforms fetch it)."""
    with ctx.session() as session:
        org_id = session.scalar(select(Organisation.id).where(Organisation.slug == org_slug[:80]))
        row = session.get(LtiToolKey, org_id) if org_id is not None else None
        if row is None:
            raise NotFound(_("No LTI tool key here."))
        return {"keys": [dict(row.public_jwk)]}


# --- login and launch -------------------------------------------------------------------------


def login(
    ctx: AppContext,
    *,
    iss: str,
    login_hint: str,
    target_link_uri: str,
    lti_message_hint: str | None,
    client_id: str | None,
    base_url: str,
) -> tuple[str, str]:
    """OIDC login initiation: (the platform's authorization URL, the state to bind to the
    browser). An unknown platform, or a target that is not this tool, is refused."""
    if not iss or not login_hint:
        raise _refuse(lti.LtiError("the login needs iss and login_hint"))
    launch_url = base_url.rstrip("/") + "/lti/launch"
    target = urlsplit(target_link_uri or launch_url)
    ours = urlsplit(launch_url)
    if (target.scheme, target.netloc) != (ours.scheme, ours.netloc):
        raise _refuse(lti.LtiError("the target link is not on this tool"))
    with ctx.session() as session:
        query = select(LtiPlatform).where(LtiPlatform.issuer == iss[:500])
        if client_id:
            query = query.where(LtiPlatform.client_id == client_id[:200])
        platforms = list(session.scalars(query.limit(2)))
        if len(platforms) != 1:
            raise _refuse(lti.LtiError("the platform is not registered (issuer and client id)"))
        platform = platforms[0]
        state, nonce = lti.new_state(), lti.new_state()
        session.add(
            LtiState(state=state, platform_id=platform.id, kind="login", nonce=nonce, data={}, used=False)
        )
        url = lti.login_redirect(
            platform.auth_login_url,
            client_id=platform.client_id,
            redirect_uri=launch_url,
            login_hint=login_hint[:1000],
            lti_message_hint=(lti_message_hint or "")[:2000] or None,
            state=state,
            nonce=nonce,
        )
    return url, state


def _take_state(session: Session, state: str, kind: str) -> LtiState:
    row = session.get(LtiState, state[:64]) if state else None
    if row is None or row.kind != kind:
        raise _refuse(lti.LtiError("unknown state"))
    if row.used:
        raise _refuse(lti.LtiError("this state was used already"))
    if utcnow() - as_utc(row.created_at) > timedelta(seconds=lti.STATE_TTL_S):
        raise _refuse(lti.LtiError("the login took too long; start again from the course"))
    row.used = True
    return row


def _fetch_jwks(url: str) -> dict[str, Any]:
    try:
        reply = httpx.get(url, timeout=HTTP_TIMEOUT_S)
        reply.raise_for_status()
        data = reply.json()
    except (httpx.HTTPError, ValueError):
        raise _refuse(lti.LtiError("the platform's key set could not be fetched")) from None
    if not isinstance(data, dict):
        raise _refuse(lti.LtiError("the platform's key set cannot be read"))
    return data


def _synthetic_email(platform: LtiPlatform, sub: str) -> str:
    digest = hashlib.sha256(f"{platform.id}:{sub}".encode()).hexdigest()[:24]
    return f"lti-{digest}@lti.invalid"


def _linked_user(session: Session, platform: LtiPlatform, launch: lti.Launch) -> User:
    link = session.scalar(
        select(LtiUserLink).where(LtiUserLink.platform_id == platform.id, LtiUserLink.sub == launch.sub)
    )
    if link is not None:
        user = session.get(User, link.user_id)
        if user is None or user.org_id != platform.org_id or user.deleted_at is not None:
            raise _refuse(lti.LtiError("the linked account is closed"))
        return user
    # A new platform user: a new account in the platform's organisation. Never linked to an
    # existing account by e-mail (the platform cannot prove the address is theirs here).
    user = auth.create_user(
        session,
        org_id=platform.org_id,
        email=_synthetic_email(platform, launch.sub),
        name=launch.name or _("Course participant"),
        password=lti.new_state(),
        role="instructor" if launch.instructor else "learner",
    )
    session.add(LtiUserLink(org_id=platform.org_id, platform_id=platform.id, sub=launch.sub, user_id=user.id))
    return user


def _redirect_for(target: str) -> str:
    kind, _sep, ident = target.partition(":")
    if kind == "lesson" and ident:
        return f"/lessons/{ident}"
    if kind == "check":
        return "/check"
    return "/practice"


def _enrol_for(session: Session, ctx: AppContext, user: User, target: str) -> None:
    """A learner launched into a skill's practice or a role's check gets a role to work toward
    when they have none (the first role that targets the skill, or the check's role)."""
    if current_role(session, user.id) is not None:
        return
    active = ctx.active_pack(session, user.org_id)
    kind, _sep, ident = target.partition(":")
    role_id = None
    if kind == "check" and ident in active.roles:
        role_id = ident
    elif kind == "practice":
        role_id = next((r.id for r in active.pack.roles if ident in r.targets), None)
    if role_id is not None:
        session.add(Enrolment(user_id=user.id, role_id=role_id, is_active=True))


def _valid_target(ctx: AppContext, session: Session, org_id: int, target: str) -> bool:
    active = ctx.active_pack(session, org_id)
    kind, _sep, ident = target.partition(":")
    if kind == "practice":
        return ident in active.skills
    if kind == "check":
        return ident in active.roles
    if kind == "lesson":
        return any(lesson.id == ident for lesson in active.pack.lessons)
    return False


def launch(ctx: AppContext, *, id_token: str, state: str, cookie_state: str | None) -> LaunchOutcome:
    """Verify a launch (state, then the id_token against the platform's keys) and log the
    platform user in to their linked account."""
    if not id_token or len(id_token) > 100_000:
        raise _refuse(lti.LtiError("the launch carries no id_token"))
    if cookie_state is not None and cookie_state != state:
        raise _refuse(lti.LtiError("the state does not belong to this browser"))
    with ctx.session() as session:  # the state is spent whatever follows
        row = _take_state(session, state, "login")
        platform_id, nonce = row.platform_id, row.nonce
        platform = session.get(LtiPlatform, platform_id)
        assert platform is not None
        jwks_url, issuer, client_id = platform.jwks_url, platform.issuer, platform.client_id
        deployments = [str(d) for d in platform.deployment_ids]
    keys = _fetch_jwks(jwks_url)
    try:
        claims = lti.verify_launch(
            id_token, keys, issuer=issuer, client_id=client_id, nonce=nonce, deployment_ids=deployments
        )
    except lti.LtiError as exc:
        raise _refuse(exc) from None
    with ctx.session() as session:
        platform = session.get(LtiPlatform, platform_id)
        assert platform is not None
        user = _linked_user(session, platform, claims)
        if claims.message_type == lti.DEEP_LINKING:
            if user.role not in ("instructor", "admin"):
                raise _refuse(lti.LtiError("only instructors place Learnloop activities"))
            dl_state = lti.new_state()
            session.add(
                LtiState(
                    state=dl_state,
                    platform_id=platform.id,
                    kind="deep_link",
                    nonce="",
                    used=False,
                    data={
                        "user_id": user.id,
                        "return_url": claims.deep_link_return_url,
                        "data": claims.deep_link_data,
                        "deployment_id": claims.deployment_id,
                    },
                )
            )
            result = auth._new_session(ctx, session, user)
            return LaunchOutcome(
                login=result, redirect=f"/lti/deep-link/{dl_state}", deep_link_state=dl_state
            )
        target = claims.custom.get("learnloop_target", "")
        if not _valid_target(ctx, session, platform.org_id, target):
            target = "practice:"
        _enrol_for(session, ctx, user, target)
        if claims.lineitem and target.partition(":")[0] in ("practice", "check"):
            grade = session.scalar(
                select(LtiGradeLink).where(
                    LtiGradeLink.platform_id == platform.id,
                    LtiGradeLink.user_id == user.id,
                    LtiGradeLink.resource_link_id == claims.resource_link_id,
                )
            )
            if grade is None:
                grade = LtiGradeLink(
                    org_id=platform.org_id,
                    platform_id=platform.id,
                    user_id=user.id,
                    resource_link_id=claims.resource_link_id,
                )
                session.add(grade)
            grade.sub, grade.lineitem, grade.target = claims.sub, claims.lineitem[:500], target
        result = auth._new_session(ctx, session, user)
        return LaunchOutcome(login=result, redirect=_redirect_for(target))


# --- deep linking -----------------------------------------------------------------------------


def _deep_link_state(session: Session, user: CurrentUser, state: str) -> LtiState:
    row = session.get(LtiState, state[:64])
    if row is None or row.kind != "deep_link" or row.used or row.data.get("user_id") != user.id:
        raise NotFound(_("This placement has expired; start again from your course."))
    if utcnow() - as_utc(row.created_at) > timedelta(seconds=lti.STATE_TTL_S * 3):
        raise NotFound(_("This placement has expired; start again from your course."))
    return row


def deep_link_choices(ctx: AppContext, user: CurrentUser, state: str) -> list[Choice]:
    """What an instructor may place: a skill's practice, a lesson, a role's skill check."""
    user.require("instructor")
    with ctx.session() as session:
        _deep_link_state(session, user, state)
        active = ctx.active_pack(session, user.org_id).localized()
        out = [
            Choice(target=f"practice:{s.id}", title=_("Practice: %(name)s") % {"name": s.name}, graded=True)
            for s in active.pack.skills
        ]
        out += [
            Choice(
                target=f"lesson:{lesson.id}",
                title=_("Lesson: %(name)s") % {"name": lesson.title},
                graded=False,
            )
            for lesson in active.pack.lessons
        ]
        out += [
            Choice(target=f"check:{r.id}", title=_("Skill check: %(name)s") % {"name": r.name}, graded=True)
            for r in active.pack.roles
        ]
        return out


def deep_link_response(
    ctx: AppContext, user: CurrentUser, state: str, targets: list[str], base_url: str
) -> tuple[str, str]:
    """The instructor's choice as a signed deep-linking response: (return URL, JWT)."""
    user.require("instructor")
    if not targets or len(targets) > 50:
        raise InvalidInput(_("Choose at least one activity (at most 50)."))
    choices = {c.target: c for c in deep_link_choices(ctx, user, state)}
    unknown = [t for t in targets if t not in choices]
    if unknown:
        raise InvalidInput(_("Unknown activity: %(target)s") % {"target": unknown[0][:200]})
    with ctx.session() as session:
        row = _deep_link_state(session, user, state)
        row.used = True
        platform = session.get(LtiPlatform, row.platform_id)
        if platform is None or platform.org_id != user.org_id:
            raise NotFound(_("No such platform."))
        key = _tool_key(session, platform.org_id)
        launch_url = base_url.rstrip("/") + "/lti/launch"
        items = [
            lti.resource_link_item(launch_url, choices[t].title, t, graded=choices[t].graded) for t in targets
        ]
        token = lti.deep_link_response(
            key,
            client_id=platform.client_id,
            issuer=platform.issuer,
            deployment_id=str(row.data.get("deployment_id", "")),
            data=row.data.get("data"),
            items=items,
        )
        return str(row.data["return_url"]), token


# --- Assignment and Grade Services ------------------------------------------------------------


def _score_of(
    session: Session, ctx: AppContext, user_id: int, org_id: int, target: str
) -> tuple[float, bool] | None:
    """(score out of 100, completed) for a placed activity, or None when there is none yet."""
    kind, _sep, ident = target.partition(":")
    if kind == "check":
        row = session.scalar(
            select(Assessment)
            .where(Assessment.user_id == user_id, Assessment.role_id == ident, Assessment.status == "done")
            .order_by(Assessment.id.desc())
            .limit(1)
        )
        if row is None or row.score is None:
            return None
        return round(100.0 * float(row.score) / 300.0, 2), True
    if kind == "practice":
        mastery = session.get(Mastery, (user_id, ident))
        if mastery is None:
            return None
        active = ctx.active_pack(session, org_id)
        role_id = current_role(session, user_id)
        role = active.roles.get(role_id) if role_id else None
        target_level = LEVEL_MASTERY[role.targets[ident]] if role and ident in role.targets else None
        done = target_level is not None and mastery.p_known >= target_level
        return round(100.0 * mastery.p_known, 2), done
    return None


PASSBACK_TASK = "lti.passback"
PASSBACK_WINDOW_S = 60


def schedule_passback(ctx: AppContext, session: Session, user_id: int) -> None:
    """After an answer: when the learner launched graded activities, a passback job at the end
    of the current minute, in the answer's transaction (one per learner and minute, so it sends
    that minute's last state)."""
    if session.scalar(select(LtiGradeLink.id).where(LtiGradeLink.user_id == user_id).limit(1)) is None:
        return
    from learnloop.jobs.queue import enqueue

    now = utcnow().timestamp()
    window = int(now // PASSBACK_WINDOW_S)
    enqueue(
        ctx,
        PASSBACK_TASK,
        {"user_id": user_id},
        dedupe_key=f"{PASSBACK_TASK}:{user_id}:{window}",
        delay_s=(window + 1) * PASSBACK_WINDOW_S - now + 1,
        session=session,
    )


def passback(ctx: AppContext, user: CurrentUser) -> PassbackReport:
    """Send the learner's scores for every graded activity they launched (skill check: its
    score; practice: mastery of the skill) to the platforms' gradebooks."""
    return passback_user(ctx, user.id, user.org_id)


def passback_user(ctx: AppContext, user_id: int, org_id: int | None = None) -> PassbackReport:
    """:func:`passback` for a worker (``org_id`` None: the learner's own organisation)."""
    report = PassbackReport()
    with ctx.session() as session:
        user_row = session.get(User, user_id)
        if user_row is None or (org_id is not None and user_row.org_id != org_id):
            raise NotFound(_("No such learner in this organisation."))
        org = user_row.org_id
        links = list(
            session.scalars(
                select(LtiGradeLink).where(LtiGradeLink.user_id == user_id, LtiGradeLink.org_id == org)
            )
        )
        work: list[tuple[int, LtiPlatform, lti.ToolKey, str, str, float, bool]] = []
        for link in links:
            found = _score_of(session, ctx, user_id, org, link.target)
            if found is None:
                report.skipped += 1
                continue
            platform = session.get(LtiPlatform, link.platform_id)
            assert platform is not None
            session.expunge(platform)
            work.append(
                (link.id, platform, _tool_key(session, org), link.sub, link.lineitem, found[0], found[1])
            )
    tokens: dict[int, str | None] = {}
    sent: dict[int, float] = {}
    with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
        for link_id, platform, key, sub, lineitem, given, completed in work:
            if platform.id not in tokens:
                tokens[platform.id] = _access_token(client, platform, key)
            token = tokens[platform.id]
            if token is None:
                report.failed += 1
                continue
            body = lti.score(sub, given, 100.0, utcnow().isoformat(), completed=completed)
            try:
                reply = client.post(
                    lti.scores_url(lineitem),
                    json=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/vnd.ims.lis.v1.score+json",
                    },
                )
                ok = reply.status_code in (200, 201, 202, 204)
            except httpx.HTTPError:
                ok = False
            if ok:
                sent[link_id] = given
                report.sent += 1
            else:
                report.failed += 1
    if sent:
        with ctx.session() as session:
            for link_id, given in sent.items():
                row = session.get(LtiGradeLink, link_id)
                if row is not None:
                    row.last_score, row.sent_at = given, utcnow()
    return report


def _access_token(client: httpx.Client, platform: LtiPlatform, key: lti.ToolKey) -> str | None:
    try:
        reply = client.post(
            platform.auth_token_url,
            data=lti.token_request(key, client_id=platform.client_id, token_url=platform.auth_token_url),
        )
        if reply.status_code != 200:
            log.warning("LTI token request refused by platform %s: HTTP %s", platform.id, reply.status_code)
            return None
        token = reply.json().get("access_token")
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        log.warning("LTI token request to platform %s failed: %s", platform.id, type(exc).__name__)
        return None
    return str(token) if token else None

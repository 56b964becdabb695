"""xAPI statements to the organisation's learning record store, through a durable outbox.

A statement is written to ``xapi_outbox`` in the same transaction as the event behind it (an
answer, a hint, a lesson read, a role target met, a finished skill check), so it exists exactly
when the event does. :func:`deliver_pending` sends what is due, one PUT per statement id
(idempotent at the LRS: a statement delivered twice is stored once), and retries failures with
exponential backoff; nothing is dropped while the LRS is down. Each answer or lesson enqueues
an ``xapi.deliver`` job (``learnloop/jobs``) in the same transaction, and the job queue sweeps
every 5 minutes for retries; ``learnloop xapi deliver`` does the same by hand.

Only organisations with an enabled ``xapi_settings`` row get statements. Actors are accounts
on the organisation's home page named by an opaque per-learner key, never by e-mail unless the
organisation chose ``mbox``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from learnloop.content.models import LEVEL_MASTERY, Item
from learnloop.errors import InvalidInput
from learnloop.i18n import _
from learnloop.interop import xapi
from learnloop.services.auth import CurrentUser
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.enrolment import current_role
from learnloop.services.mastery import targets_met
from learnloop.store.models import Assessment, Response, User, as_utc, utcnow
from learnloop.store.models_interop import XapiOutbox, XapiSettings

log = logging.getLogger(__name__)

#: first retry after this many seconds, doubling per failure up to BACKOFF_MAX_S
BACKOFF_BASE_S = 30.0
BACKOFF_MAX_S = 3600.0
#: a claimed row is left alone by other workers for this long
CLAIM_LEASE_S = 120.0
#: the job task that delivers (learnloop/jobs/tasks.py); one job per window of this many seconds
DELIVER_TASK = "xapi.deliver"
DELIVERY_WINDOW_S = 10


class XapiSettingsView(BaseModel):
    enabled: bool
    endpoint: str
    username: str
    #: whether a password is stored (it is never shown back)
    password_set: bool
    actor_mode: str
    home_page: str
    pending: int
    sent: int
    #: the oldest pending statement's last failure, if any
    last_error: str | None = None


class DeliveryReport(BaseModel):
    sent: int = 0
    failed: int = 0


# --- settings -------------------------------------------------------------------------------


def _clean_url(value: str, what: str) -> str:
    value = value.strip()
    if len(value) > 500:
        raise InvalidInput(_("The %(what)s is too long.") % {"what": what})
    try:
        xapi.check_url(value, what)
    except xapi.XapiError:
        raise InvalidInput(_("The %(what)s must be an absolute http(s) URL.") % {"what": what}) from None
    if "@" in value.split("//", 1)[1].split("/", 1)[0]:
        raise InvalidInput(_("Put the LRS credentials in the user name and password fields, not in the URL."))
    return value


def settings_view(ctx: AppContext, user: CurrentUser) -> XapiSettingsView:
    user.require("admin")
    with ctx.session() as session:
        row = session.get(XapiSettings, user.org_id)
        counts = dict(
            session.execute(
                select(XapiOutbox.status, func.count())
                .where(XapiOutbox.org_id == user.org_id)
                .group_by(XapiOutbox.status)
            ).all()
        )
        last_error = session.scalar(
            select(XapiOutbox.last_error)
            .where(XapiOutbox.org_id == user.org_id, XapiOutbox.status == "pending")
            .order_by(XapiOutbox.id)
            .limit(1)
        )
        return XapiSettingsView(
            enabled=bool(row and row.enabled),
            endpoint=row.endpoint if row else "",
            username=row.username if row else "",
            password_set=bool(row and row.password),
            actor_mode=row.actor_mode if row else "account",
            home_page=row.home_page if row else "",
            pending=int(counts.get("pending", 0)),
            sent=int(counts.get("sent", 0)),
            last_error=last_error,
        )


def save_settings(
    ctx: AppContext,
    user: CurrentUser,
    *,
    enabled: bool,
    endpoint: str,
    username: str,
    password: str | None,
    actor_mode: str,
    home_page: str,
) -> XapiSettingsView:
    """Set the organisation's LRS. ``password`` None (or empty) keeps the stored one."""
    user.require("admin")
    endpoint = _clean_url(endpoint, _("LRS endpoint"))
    home_page = _clean_url(home_page, _("home page"))
    if actor_mode not in xapi.ACTOR_MODES:
        raise InvalidInput(_("The actor must be named by account or by e-mail (mbox)."))
    if len(username) > 200 or (password is not None and len(password) > 500):
        raise InvalidInput(_("The LRS user name or password is too long."))
    with ctx.session() as session:
        row = session.get(XapiSettings, user.org_id)
        if row is None:
            row = XapiSettings(
                org_id=user.org_id,
                endpoint=endpoint,
                home_page=home_page,
                password="",
                id_namespace=str(uuid.uuid4()),
            )
            session.add(row)
        row.enabled = enabled
        row.endpoint = endpoint
        row.username = username.strip()
        if password:
            row.password = password
        row.actor_mode = actor_mode
        row.home_page = home_page
        row.updated_at = utcnow()
    return settings_view(ctx, user)


# --- enqueueing, inside the caller's transaction ---------------------------------------------


def _site(session: Session, org_id: int, language: str = "en") -> xapi.Site | None:
    row = session.get(XapiSettings, org_id)
    if row is None or not row.enabled:
        return None
    return xapi.Site(
        home_page=row.home_page, namespace=row.id_namespace, actor_mode=row.actor_mode, language=language
    )


def _actor(session: Session, site: xapi.Site, org_id: int, user_id: int) -> xapi.Actor:
    user = session.get(User, user_id)
    if user is None or user.org_id != org_id:
        raise InvalidInput(_("No such learner in this organisation."))
    return xapi.Actor(user_key=site.user_key(user_id), name=user.name, email=user.email)


def actor_key(ctx: AppContext, org_id: int, user_id: int) -> str | None:
    """The learner's account name in the organisation's statements (None: no LRS set)."""
    with ctx.session() as session:
        site = _site(session, org_id)
        return site.user_key(user_id) if site else None


def _add(session: Session, org_id: int, event: str, statement: dict[str, Any]) -> bool:
    """Queue ``statement`` unless a statement with its id is queued already."""
    sid = statement["id"]
    if session.scalar(select(XapiOutbox.id).where(XapiOutbox.statement_id == sid)) is not None:
        return False
    session.add(
        XapiOutbox(
            org_id=org_id, statement_id=sid, event=event, statement=statement, next_attempt_at=utcnow()
        )
    )
    return True


def schedule_delivery(ctx: AppContext, session: Session) -> None:
    """A delivery job in the caller's transaction, one per DELIVERY_WINDOW_S however many
    statements are queued meanwhile (it sends everything due). Called after each answer and
    lesson; a hint's statement goes with the next one, or with the job queue's sweep."""
    from learnloop.jobs.queue import enqueue

    window = int(utcnow().timestamp() // DELIVERY_WINDOW_S)
    enqueue(ctx, DELIVER_TASK, {}, dedupe_key=f"{DELIVER_TASK}:{window}", session=session)


def _skills(active: ActivePack, skill_ids: list[str]) -> list[tuple[str, str]]:
    return [(s, active.pack.skill(s).name) for s in skill_ids if s in active.skills]


def record_answer(
    session: Session,
    active: ActivePack,
    org_id: int,
    user_id: int,
    item: Item,
    response: Response,
    *,
    check_id: int | None = None,
) -> None:
    """An answer was appended to the log (``response`` is flushed: it has its id)."""
    site = _site(session, org_id, active.language)
    if site is None:
        return
    statement = xapi.answered(
        site.statement_id("answered", response.id),
        site,
        _actor(session, site, org_id, user_id),
        item_id=item.id,
        item_kind=str(item.kind),
        stem=item.stem,
        skills=_skills(active, list(item.skills)),
        correct=response.correct,
        score=response.score,
        hints_used=response.hints_used or 0,
        duration_ms=response.duration_ms,
        at=as_utc(response.created_at),
        check_id=check_id,
    )
    _add(session, org_id, "answered", statement)


def record_hint(
    session: Session,
    active: ActivePack,
    org_id: int,
    user_id: int,
    item: Item,
    level: int,
    presentation_id: str,
) -> None:
    """Hint ``level`` of ``item`` was shown for the first time in this presentation."""
    site = _site(session, org_id, active.language)
    if site is None:
        return
    statement = xapi.hint_used(
        site.statement_id("hint", user_id, presentation_id, level),
        site,
        _actor(session, site, org_id, user_id),
        item_id=item.id,
        level=level,
        skills=_skills(active, list(item.skills)),
        at=utcnow(),
    )
    _add(session, org_id, "hint", statement)


def record_targets_met(
    session: Session,
    ctx: AppContext,
    active: ActivePack,
    org_id: int,
    user_id: int,
    skill_ids: list[str],
    at: datetime,
) -> None:
    """After an answer on ``skill_ids``: a statement for each target of the learner's role that
    is met now (mastery at the target with enough evidence, ``science/evidence.py``) and had no
    statement yet (one per learner, role and skill)."""
    site = _site(session, org_id, active.language)
    if site is None:
        return
    schedule_delivery(ctx, session)
    role_id = current_role(session, user_id)
    role = active.roles.get(role_id) if role_id else None
    if role is None:
        return
    wanted = {s: LEVEL_MASTERY[role.targets[s]] for s in skill_ids if s in role.targets}
    ids = {s: site.statement_id("met", user_id, role.id, s) for s in wanted}
    if not ids:
        return
    done = set(
        session.scalars(select(XapiOutbox.statement_id).where(XapiOutbox.statement_id.in_(ids.values())))
    )
    todo = {s: t for s, t in wanted.items() if ids[s] not in done}
    if not todo:
        return
    met = targets_met(session, ctx.settings, active.items_by_skill, user_id, todo, at)
    if not met:
        return
    who = _actor(session, site, org_id, user_id)
    for skill_id, p_known in met.items():
        statement = xapi.target_met(
            ids[skill_id],
            site,
            who,
            skill_id=skill_id,
            skill_name=active.pack.skill(skill_id).name,
            role_id=role.id,
            role_name=role.name,
            mastery=p_known,
            at=at,
        )
        _add(session, org_id, "target_met", statement)


def record_check_completed(session: Session, active: ActivePack, row: Assessment) -> None:
    """A skill check was finished (``row.status`` is done, with its score)."""
    site = _site(session, row.org_id, active.language)
    if site is None or row.score is None:
        return
    role = active.roles.get(row.role_id)
    statement = xapi.check_completed(
        site.statement_id("check", row.id),
        site,
        _actor(session, site, row.org_id, row.user_id),
        check_id=row.id,
        role_id=row.role_id,
        role_name=role.name if role else row.role_id,
        score=float(row.score),
        items=len(row.administered or []),
        at=as_utc(row.finished_at) if row.finished_at else utcnow(),
    )
    _add(session, row.org_id, "check_completed", statement)


def lesson_read(ctx: AppContext, user: CurrentUser, lesson_id: str) -> None:
    """The learner opened a lesson: one statement per learner, lesson and minute."""
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id).localized()
        lesson = active.lesson(lesson_id)  # NotFound for an unknown lesson
        site = _site(session, user.org_id, active.language)
        if site is None:
            return
        now = utcnow()
        statement = xapi.lesson_read(
            site.statement_id("lesson", user.id, lesson.id, now.strftime("%Y-%m-%dT%H:%M")),
            site,
            _actor(session, site, user.org_id, user.id),
            lesson_id=lesson.id,
            title=lesson.title,
            skills=_skills(active, list(lesson.skills)),
            at=now,
        )
        _add(session, user.org_id, "lesson", statement)
        schedule_delivery(ctx, session)


# --- delivery ---------------------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    """The wait before the next try after ``attempts`` failed ones."""
    return timedelta(seconds=min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


def _claim(
    ctx: AppContext, now: datetime, limit: int, org_id: int | None
) -> list[tuple[int, int, str, dict[str, Any], int]]:
    """Take up to ``limit`` due rows of enabled organisations: each is left alone by other
    workers for CLAIM_LEASE_S (``FOR UPDATE SKIP LOCKED`` on PostgreSQL while claiming)."""
    query = (
        select(XapiOutbox)
        .join(XapiSettings, XapiSettings.org_id == XapiOutbox.org_id)
        .where(
            XapiSettings.enabled.is_(True),
            XapiOutbox.status == "pending",
            XapiOutbox.next_attempt_at <= now,
        )
    )
    if org_id is not None:
        query = query.where(XapiOutbox.org_id == org_id)
    with ctx.session() as session:
        rows = (
            session.execute(
                query.order_by(XapiOutbox.id).limit(limit).with_for_update(skip_locked=True, of=XapiOutbox)
            )
            .scalars()
            .all()
        )
        for row in rows:
            row.next_attempt_at = now + timedelta(seconds=CLAIM_LEASE_S)
        return [(r.id, r.org_id, r.statement_id, dict(r.statement), r.attempts) for r in rows]


def _send(client: httpx.Client, settings: XapiSettings, sid: str, statement: dict[str, Any]) -> str | None:
    """PUT one statement; None when the LRS has it (stored now, or already), else the error."""
    url = settings.endpoint.rstrip("/") + "/statements"
    try:
        reply = client.put(
            url,
            params={"statementId": sid},
            json=statement,
            auth=httpx.BasicAuth(settings.username, settings.password)
            if settings.username
            else httpx.USE_CLIENT_DEFAULT,
            headers={"X-Experience-API-Version": xapi.XAPI_VERSION},
        )
    except httpx.HTTPError as exc:
        return type(exc).__name__  # never the URL or the credentials
    if reply.status_code in (200, 204):
        return None
    if reply.status_code == 409:  # a statement with this id is stored: an earlier try got through
        return None
    return f"HTTP {reply.status_code}"


def deliver_pending(
    ctx: AppContext,
    *,
    limit: int = 200,
    now: datetime | None = None,
    timeout_s: float = 10.0,
    org_id: int | None = None,
) -> DeliveryReport:
    """Send the statements that are due (of every organisation, or of ``org_id``); failures
    wait (backoff) and are tried again later. For a worker: it needs no user."""
    now = now or utcnow()
    claimed = _claim(ctx, now, limit, org_id)
    report = DeliveryReport()
    if not claimed:
        return report
    with ctx.session() as session:
        settings = {
            s.org_id: s
            for s in session.scalars(
                select(XapiSettings).where(XapiSettings.org_id.in_({c[1] for c in claimed}))
            )
        }
        for s in settings.values():
            session.expunge(s)
    outcomes: dict[int, tuple[str | None, int]] = {}
    with httpx.Client(timeout=timeout_s) as client:
        for row_id, org_id, sid, statement, attempts in claimed:
            outcomes[row_id] = (_send(client, settings[org_id], sid, statement), attempts)
    with ctx.session() as session:
        for row_id, (error, attempts) in outcomes.items():
            row = session.get(XapiOutbox, row_id)
            if row is None or row.status != "pending":
                continue
            row.attempts = attempts + 1
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", utcnow(), None
                report.sent += 1
            else:
                row.last_error = error[:200]
                row.next_attempt_at = now + backoff(row.attempts)
                report.failed += 1
    if report.failed:
        log.warning("xAPI delivery: %d sent, %d failed (will retry)", report.sent, report.failed)
    return report


def deliver_now(ctx: AppContext, user: CurrentUser) -> DeliveryReport:
    """An admin sends their organisation's due statements now (the button on the LRS page)."""
    user.require("admin")
    return deliver_pending(ctx, org_id=user.org_id)

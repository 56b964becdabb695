"""E-mail: a durable outbox, delivery over SMTP (standard library), and reminders.

A message is written to ``email_outbox`` in the same transaction as what it reports (an
invitation, a reminder), rendered in the recipient's language, and a ``mail.send`` job is
enqueued with it (``learnloop/jobs``): the job sends it, and a failure (the SMTP server down)
is retried with the queue's back-off; the message stays in the outbox until it is sent, and
nothing else fails. :func:`deliver_pending` sends whatever is waiting (a worker or
``learnloop`` can call it, e.g. after the SMTP settings are fixed).

Reminders (:func:`send_reminders`, every ``reminders_every_h`` hours): a learner with reviews
due, at most once a day, and a learner without an answer for ``reminder_inactive_days`` days,
at most once in that time. Each person can turn reminders off on their settings page; simulated
(demo) people and deactivated members get none. Reminders say only what is due for the person
themselves, nothing about anyone else.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from learnloop import i18n
from learnloop.i18n import _
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import EmailOutbox, ReviewCard, User, as_utc, utcnow
from learnloop.store.models import Response as Answer

#: delivery tries of one message before it is marked failed (each job try is one)
MAX_ATTEMPTS = 8
#: a message being sent longer than this is taken as lost (its process died) and sent again
SENDING_TIMEOUT = timedelta(minutes=10)


class DeliveryReport(BaseModel):
    sent: int
    failed: int
    waiting: int


@contextmanager
def in_locale(locale: str) -> Iterator[None]:
    """Render messages in ``locale`` (the recipient's), whatever the current request's is."""
    before = i18n.get_locale()
    i18n.set_locale(locale)
    try:
        yield
    finally:
        i18n.set_locale(before)


def queue(
    ctx: AppContext,
    session: Session,
    *,
    org_id: int,
    user_id: int | None,
    to: str,
    kind: str,
    subject: str,
    body: str,
) -> EmailOutbox:
    """Put a message in the outbox within the caller's transaction, and enqueue its delivery."""
    from learnloop.jobs import enqueue

    message = EmailOutbox(
        org_id=org_id, user_id=user_id, kind=kind, to_address=to, subject=subject[:300], body=body
    )
    session.add(message)
    session.flush()
    enqueue(
        ctx,
        "mail.send",
        {"message_id": message.id},
        dedupe_key=f"mail:{message.id}",
        org_id=org_id,
        session=session,
    )
    return message


def _send(ctx: AppContext, to: str, subject: str, body: str) -> None:
    settings = ctx.settings
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="learnloop")
    mail.set_content(body)
    smtp_class = smtplib.SMTP_SSL if settings.smtp_ssl else smtplib.SMTP
    with smtp_class(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s) as smtp:
        if settings.smtp_starttls and not settings.smtp_ssl:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(mail)


def _error_text(exc: Exception) -> str:
    """What went wrong, by kind and code only (never a password or a server's full reply)."""
    code = getattr(exc, "smtp_code", None)
    return f"{type(exc).__name__}{f' {code}' if code else ''}"[:300]


def deliver_one(ctx: AppContext, message_id: int, *, final: bool = False) -> str:
    """Send one message of the outbox: "sent", "waiting" (no SMTP server set, or already
    handled) or, on failure, the error is recorded and raised again (the job retries it;
    ``final``: the last try, the message is marked failed)."""
    if not ctx.settings.smtp_host:
        return "waiting"
    with ctx.session() as session:
        # claim it: of two workers (the job, a sweep) only one sends
        claimed = session.execute(
            update(EmailOutbox)
            .where(EmailOutbox.id == message_id, EmailOutbox.status == "pending")
            .values(status="sending", next_attempt_at=utcnow() + SENDING_TIMEOUT)
        )
        if not getattr(claimed, "rowcount", 0):
            return "waiting"
        message = session.get(EmailOutbox, message_id)
        assert message is not None
        to, subject, body = message.to_address, message.subject, message.body
    try:
        _send(ctx, to, subject, body)
    except (OSError, smtplib.SMTPException) as exc:
        with ctx.session() as session:
            message = session.get(EmailOutbox, message_id)
            assert message is not None
            message.status = "pending"
            message.attempts += 1
            message.last_error = _error_text(exc)
            message.next_attempt_at = utcnow() + timedelta(seconds=min(3600, 30 * 2**message.attempts))
            if final or message.attempts >= MAX_ATTEMPTS:
                message.status = "failed"
        raise
    with ctx.session() as session:
        message = session.get(EmailOutbox, message_id)
        assert message is not None
        message.status, message.sent_at = "sent", utcnow()
        message.attempts += 1
    return "sent"


def deliver_pending(ctx: AppContext, *, now: datetime | None = None, limit: int = 200) -> DeliveryReport:
    """Send every waiting message whose next try is due; failures are recorded, never raised."""
    moment = now or utcnow()
    with ctx.session() as session:
        # a send cut off midway (the process died) is tried again once its claim runs out
        session.execute(
            update(EmailOutbox)
            .where(EmailOutbox.status == "sending", EmailOutbox.next_attempt_at <= moment)
            .values(status="pending")
        )
    with ctx.session() as session:
        ids = list(
            session.scalars(
                select(EmailOutbox.id)
                .where(EmailOutbox.status == "pending", EmailOutbox.next_attempt_at <= moment)
                .order_by(EmailOutbox.id)
                .limit(limit)
            )
        )
    sent = failed = 0
    for message_id in ids:
        try:
            sent += deliver_one(ctx, message_id) == "sent"
        except (OSError, smtplib.SMTPException):
            failed += 1
    with ctx.session() as session:
        waiting = session.scalar(select(func.count()).where(EmailOutbox.status == "pending")) or 0
    return DeliveryReport(sent=sent, failed=failed, waiting=waiting)


# --- reminders -----------------------------------------------------------------------------


class ReminderState(BaseModel):
    reminders: bool


def get_reminders(ctx: AppContext, user: CurrentUser) -> ReminderState:
    with ctx.session() as session:
        me = session.get(User, user.id)
        assert me is not None
        return ReminderState(reminders=bool(me.email_reminders))


def set_reminders(ctx: AppContext, user: CurrentUser, on: bool) -> ReminderState:
    """Turn one's own reminder e-mails on or off (takes effect at the next reminder round)."""
    with ctx.session() as session:
        me = session.get(User, user.id)
        assert me is not None
        me.email_reminders = on
        return ReminderState(reminders=on)


def _recent(session: Session, kind: str, since: datetime) -> set[int]:
    rows = session.scalars(
        select(EmailOutbox.user_id).where(EmailOutbox.kind == kind, EmailOutbox.created_at >= since)
    )
    return {int(uid) for uid in rows if uid is not None}


def send_reminders(ctx: AppContext, *, now: datetime | None = None) -> int:
    """Queue this round's reminders; how many were queued (none without an SMTP server: they
    would only pile up in the outbox)."""
    if not ctx.settings.smtp_host:
        return 0
    moment = now or utcnow()
    inactive = timedelta(days=ctx.settings.reminder_inactive_days)
    settings_link = ctx.settings.public_url.rstrip("/") + "/settings"
    queued = 0
    with ctx.session() as session:
        people = list(
            session.scalars(
                select(User).where(
                    User.deleted_at.is_(None),
                    User.deactivated_at.is_(None),
                    User.is_simulated.is_(False),
                    User.email_reminders.is_(True),
                )
            )
        )
        due = dict(
            session.execute(
                select(ReviewCard.user_id, func.count())
                .where(ReviewCard.due <= moment)
                .group_by(ReviewCard.user_id)
            ).all()
        )
        last = dict(
            session.execute(
                select(Answer.user_id, func.max(Answer.created_at)).group_by(Answer.user_id)
            ).all()
        )
        due_sent = _recent(session, "reminder.due", moment - timedelta(hours=20))
        idle_sent = _recent(session, "reminder.inactive", moment - inactive)
        for person in people:
            count = int(due.get(person.id, 0))
            last_answer = last.get(person.id)
            with in_locale(person.locale):
                if count and person.id not in due_sent:
                    subject = _("%(n)s reviews are due in Learnloop") % {"n": count}
                    body = _(
                        "Hello %(name)s,\n\n%(n)s of your reviews are due. A few minutes now keep what you "
                        "learnt from fading: %(url)s\n\nTo stop these reminders, turn them off on your "
                        "settings page: %(settings)s\n"
                    ) % {
                        "name": person.name,
                        "n": count,
                        "url": ctx.settings.public_url.rstrip("/") + "/practice",
                        "settings": settings_link,
                    }
                    kind = "reminder.due"
                elif (
                    last_answer is not None
                    and moment - as_utc(last_answer) > inactive
                    and person.id not in idle_sent
                ):
                    subject = _("Your learning path is waiting")
                    body = _(
                        "Hello %(name)s,\n\nyou have not practised for %(days)s days. Pick up where you "
                        "left off: %(url)s\n\nTo stop these reminders, turn them off on your settings "
                        "page: %(settings)s\n"
                    ) % {
                        "name": person.name,
                        "days": (moment - as_utc(last_answer)).days,
                        "url": ctx.settings.public_url.rstrip("/") + "/practice",
                        "settings": settings_link,
                    }
                    kind = "reminder.inactive"
                else:
                    continue
            queue(
                ctx,
                session,
                org_id=person.org_id,
                user_id=person.id,
                to=person.email,
                kind=kind,
                subject=subject,
                body=body,
            )
            queued += 1
    return queued


# --- weekly digests ------------------------------------------------------------------------

DIGEST_EVERY = timedelta(days=6, hours=12)


def send_digests(ctx: AppContext, *, now: datetime | None = None) -> int:
    """Queue the weekly digests that are due; how many were queued.

    A learner's digest: their own answers of the past week and reviews due. A manager's digest:
    how many of their reports practised and how much (only when they have at least
    ``report_min_group`` reports, as every report requires), and by name only the reports who
    consented to share with them. Both respect the reminder opt-out; none without SMTP."""
    if not ctx.settings.smtp_host:
        return 0
    moment = now or utcnow()
    week = moment - timedelta(days=7)
    queued = 0
    with ctx.session() as session:
        people = list(
            session.scalars(
                select(User).where(
                    User.deleted_at.is_(None),
                    User.deactivated_at.is_(None),
                    User.is_simulated.is_(False),
                    User.email_reminders.is_(True),
                )
            )
        )
        answers = dict(
            session.execute(
                select(Answer.user_id, func.count()).where(Answer.created_at >= week).group_by(Answer.user_id)
            ).all()
        )
        due = dict(
            session.execute(
                select(ReviewCard.user_id, func.count())
                .where(ReviewCard.due <= moment)
                .group_by(ReviewCard.user_id)
            ).all()
        )
        learner_sent = _recent(session, "digest.learner", moment - DIGEST_EVERY)
        manager_sent = _recent(session, "digest.manager", moment - DIGEST_EVERY)
        reports: dict[int, list[User]] = {}
        for report in session.scalars(
            select(User).where(
                User.manager_id.is_not(None), User.deleted_at.is_(None), User.deactivated_at.is_(None)
            )
        ):
            reports.setdefault(int(report.manager_id or 0), []).append(report)
        link = ctx.settings.public_url.rstrip("/")
        for person in people:
            mine = reports.get(person.id, [])
            with in_locale(person.locale):
                if person.role == "learner" and person.id not in learner_sent and person.id in answers:
                    kind = "digest.learner"
                    subject = _("Your week in Learnloop")
                    body = _(
                        "Hello %(name)s,\n\nthis week you answered %(answers)s questions; %(due)s reviews "
                        "are due now. Your progress: %(url)s\n\nTo stop these e-mails, turn them off on "
                        "your settings page: %(settings)s\n"
                    ) % {
                        "name": person.name,
                        "answers": answers.get(person.id, 0),
                        "due": due.get(person.id, 0),
                        "url": link + "/reports/me",
                        "settings": link + "/settings",
                    }
                elif mine and person.role in ("manager", "admin") and person.id not in manager_sent:
                    kind = "digest.manager"
                    lines = [_("Your team this week:")]
                    if len(mine) >= ctx.settings.report_min_group:
                        active = sum(1 for r in mine if answers.get(r.id))
                        total = sum(int(answers.get(r.id, 0)) for r in mine)
                        lines.append(
                            _("%(active)s of %(people)s people practised, %(answers)s answers in all.")
                            % {"active": active, "people": len(mine), "answers": total}
                        )
                    else:
                        lines.append(
                            _("Team figures are shown for groups of at least %(n)s people.")
                            % {"n": ctx.settings.report_min_group}
                        )
                    shared = sorted((r for r in mine if r.consent_share), key=lambda r: r.name)
                    for report in shared:
                        lines.append(
                            _("%(name)s: %(answers)s answers")
                            % {"name": report.name, "answers": answers.get(report.id, 0)}
                        )
                    subject = _("Your team's week in Learnloop")
                    body = (
                        _("Hello %(name)s,") % {"name": person.name}
                        + "\n\n"
                        + "\n".join(lines)
                        + "\n\n"
                        + _("The team report: %(url)s") % {"url": link + "/reports/team"}
                        + "\n"
                    )
                else:
                    continue
            queue(
                ctx,
                session,
                org_id=person.org_id,
                user_id=person.id,
                to=person.email,
                kind=kind,
                subject=subject,
                body=body,
            )
            queued += 1
    return queued

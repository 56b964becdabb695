"""What follows a stored answer, in its transaction: the xAPI statements, the credentials, the
webhooks and the LTI grade passback.

Most organisations use none of them, and most answers complete nothing, so what each needs to
know first (is an LRS set, is an endpoint active, did the learner launch graded activities,
their role and whether its credential is issued, are skill badges on) is read in one
statement (:func:`probe`), and only the hooks that apply run, each exactly as it would alone.
The answer path was nine statements for this whatever the setup (issue 18)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Integer, Select, bindparam, select
from sqlalchemy.orm import Session

from learnloop.content.models import Item
from learnloop.services import badges, lti, xapi_outbox
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.people import webhooks
from learnloop.store.models import Enrolment, Mastery, Response
from learnloop.store.models_interop import BadgeCredential, BadgeSettings, LtiGradeLink, XapiSettings
from learnloop.store.models_webhooks import WebhookEndpoint


class Setup(NamedTuple):
    """What decides which hooks run after one learner's answer."""

    xapi: bool
    webhooks: bool
    lti: bool
    badges: badges.BadgeState


def _probe_statement() -> Select[Any]:
    org_id, user_id = bindparam("org_id", type_=Integer), bindparam("user_id", type_=Integer)
    role = (
        select(Enrolment.role_id)
        .where(Enrolment.user_id == user_id, Enrolment.is_active.is_(True))
        .order_by(Enrolment.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(
        select(XapiSettings.enabled).where(XapiSettings.org_id == org_id).scalar_subquery(),
        select(WebhookEndpoint.id)
        .where(WebhookEndpoint.org_id == org_id, WebhookEndpoint.active.is_(True))
        .exists(),
        select(LtiGradeLink.id).where(LtiGradeLink.user_id == user_id).exists(),
        role,
        select(BadgeCredential.id)
        .where(BadgeCredential.user_id == user_id, BadgeCredential.role_id == role)
        .limit(1)
        .scalar_subquery(),
        select(BadgeSettings.skill_badges).where(BadgeSettings.org_id == org_id).scalar_subquery(),
    )


#: built once (a statement's construction costs more than its run on a small table)
_PROBE = _probe_statement()


def probe(session: Session, org_id: int, user_id: int) -> Setup:
    """The organisation's and the learner's setup for the hooks, in one statement."""
    row = session.execute(_PROBE, {"org_id": org_id, "user_id": user_id}).one()
    xapi_on, hooks_on, linked, role_id, done, skills_on = row
    return Setup(
        xapi=bool(xapi_on),
        webhooks=bool(hooks_on),
        lti=bool(linked),
        badges=badges.BadgeState(
            role_id=None if role_id is None else str(role_id),
            done=None if done is None else str(done),
            skills_on=bool(skills_on),
        ),
    )


def after_answer(
    session: Session,
    ctx: AppContext,
    active: ActivePack,
    org_id: int,
    user_id: int,
    item: Item,
    response: Response,
    at: datetime,
    *,
    rows: Mapping[str, Mastery] | None = None,
    check_id: int | None = None,
    passback: bool = True,
) -> None:
    """The hooks of one stored answer (``response``, flushed), after its mastery update:
    ``rows``: the learner's mastery rows as that update left them, when the caller has them.
    ``check_id``: the skill check the answer belongs to. ``passback``: schedule the LTI
    passback (practice answers)."""
    setup = probe(session, org_id, user_id)
    skills = list(item.skills)
    if setup.xapi:
        xapi_outbox.record_answer(session, active, org_id, user_id, item, response, check_id=check_id)
        xapi_outbox.record_targets_met(session, ctx, active, org_id, user_id, skills, at)
    badges.issue_if_ready(session, ctx, active, org_id, user_id, known=setup.badges, rows=rows)
    if setup.webhooks:
        webhooks.after_answer(session, ctx, active, org_id, user_id, item, response, check_id=check_id)
    if passback and setup.lti:
        lti.schedule_passback(ctx, session, user_id)

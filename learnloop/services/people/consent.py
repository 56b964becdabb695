"""A learner's consent to share their individual figures with their manager.

The learner alone grants or withdraws it (settings page, API). Every report reads
``users.consent_share`` on each request (``reports.may_see_person``), so a change holds from
the next request on; each change is logged in ``consent_events`` with its time.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import ConsentEvent, User, UtcDateTime, utcnow


class ConsentChange(BaseModel):
    granted: bool
    at: UtcDateTime


class ConsentState(BaseModel):
    granted: bool
    changed_at: UtcDateTime | None
    manager: str | None
    history: list[ConsentChange]


def _state(session: Session, user_id: int) -> ConsentState:
    me = session.get(User, user_id)
    assert me is not None
    manager = session.get(User, me.manager_id) if me.manager_id else None
    events = session.scalars(
        select(ConsentEvent).where(ConsentEvent.user_id == user_id).order_by(ConsentEvent.id.desc()).limit(20)
    )
    return ConsentState(
        granted=bool(me.consent_share),
        changed_at=me.consent_changed_at,
        manager=manager.name if manager is not None and manager.deactivated_at is None else None,
        history=[ConsentChange(granted=e.granted, at=e.created_at) for e in events],
    )


def get_consent(ctx: AppContext, user: CurrentUser) -> ConsentState:
    with ctx.session() as session:
        return _state(session, user.id)


def record(session: Session, person: User, granted: bool, *, at: datetime | None = None) -> None:
    """Set a person's consent in the caller's transaction, logging it when it changes (the one
    place consent is written: the settings page, the API and the demo come through here)."""
    if bool(person.consent_share) != granted:
        moment = at or utcnow()
        person.consent_share = granted
        person.consent_changed_at = moment
        session.add(ConsentEvent(org_id=person.org_id, user_id=person.id, granted=granted, created_at=moment))
        session.flush()


def set_consent(
    ctx: AppContext, user: CurrentUser, granted: bool, *, at: datetime | None = None
) -> ConsentState:
    """Grant or withdraw sharing with the manager (only the person themselves); logged."""
    with ctx.session() as session:
        me = session.get(User, user.id)
        assert me is not None
        record(session, me, granted, at=at)
        return _state(session, user.id)

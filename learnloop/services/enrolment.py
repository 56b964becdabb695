"""A learner's target role: the one idea practice, guidance, checks and reports all read."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from learnloop.services.context import AppContext
from learnloop.store.models import Enrolment


def current_role(session: Session, user_id: int) -> str | None:
    """The role the learner is enrolled in now, or None."""
    row = session.execute(
        select(Enrolment.role_id)
        .where(Enrolment.user_id == user_id, Enrolment.is_active.is_(True))
        .order_by(Enrolment.id.desc())
    ).first()
    return row[0] if row else None


def role_of(ctx: AppContext, user_id: int) -> str | None:
    """:func:`current_role` in a session of its own (for pages that only show it)."""
    with ctx.session() as session:
        return current_role(session, user_id)

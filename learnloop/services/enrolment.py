"""A learner's target role: the one idea practice, guidance, checks and reports all read."""

from __future__ import annotations

from sqlalchemy import ScalarSelect, bindparam, select
from sqlalchemy.orm import Session

from learnloop.services.context import AppContext
from learnloop.store.models import Enrolment

#: the learner's role now: their newest active enrolment (bound parameter ``role_user``)
_ROLE = (
    select(Enrolment.role_id)
    .where(Enrolment.user_id == bindparam("role_user"), Enrolment.is_active.is_(True))
    .order_by(Enrolment.id.desc())
    .limit(1)
)


def current_role(session: Session, user_id: int) -> str | None:
    """The role the learner is enrolled in now, or None."""
    role = session.execute(_ROLE, {"role_user": user_id}).scalar()
    return None if role is None else str(role)


def role_subquery() -> ScalarSelect[str]:
    """:func:`current_role` as a scalar subquery, to be read in one statement with other rows
    (the caller binds ``role_user`` to the learner's id)."""
    return _ROLE.scalar_subquery()


def role_of(ctx: AppContext, user_id: int) -> str | None:
    """:func:`current_role` in a session of its own (for pages that only show it)."""
    with ctx.session() as session:
        return current_role(session, user_id)

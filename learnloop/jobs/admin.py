"""The jobs as administrators see them (``/admin/jobs``): list, and try a dead job again.

An administrator sees their organisation's jobs and the jobs that belong to no organisation
(the scheduled fits and snapshots); never another organisation's.
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import or_, select

from learnloop.errors import Conflict, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.jobs import queue
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import Job, UtcDateTime, utcnow

STATES = ("queued", "running", "retry", "done", "dead")


class JobView(BaseModel):
    id: int
    task: str
    #: None: work for every organisation (scheduled fits and snapshots)
    org_id: int | None
    state: str
    attempts: int
    max_attempts: int
    last_error: str
    run_at: UtcDateTime
    created_at: UtcDateTime
    finished_at: UtcDateTime | None
    can_retry: bool


def _visible(user: CurrentUser):  # type: ignore[no-untyped-def]
    return or_(Job.org_id == user.org_id, Job.org_id.is_(None))


def _view(row: Job) -> JobView:
    return JobView(
        id=row.id,
        task=row.task,
        org_id=row.org_id,
        state=row.state,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        last_error=row.last_error,
        run_at=row.run_at,
        created_at=row.created_at,
        finished_at=row.finished_at,
        can_retry=row.state == "dead",
    )


def list_jobs(ctx: AppContext, user: CurrentUser, state: str = "", limit: int = 200) -> list[JobView]:
    """The newest jobs the caller may see, optionally of one state (admins only)."""
    user.require("admin")
    if state and state not in STATES:
        raise InvalidInput(_("Unknown job state; use one of: %(states)s") % {"states": ", ".join(STATES)})
    with ctx.session() as session:
        query = select(Job).where(_visible(user))
        if state:
            query = query.where(Job.state == state)
        rows = session.scalars(query.order_by(Job.id.desc()).limit(max(1, min(limit, 1000)))).all()
        return [_view(r) for r in rows]


def counts(ctx: AppContext, user: CurrentUser) -> dict[str, int]:
    """Jobs per state, as the caller sees them."""
    user.require("admin")
    from sqlalchemy import func

    with ctx.session() as session:
        found = dict(
            session.execute(select(Job.state, func.count()).where(_visible(user)).group_by(Job.state)).all()
        )
    return {s: int(found.get(s, 0)) for s in STATES}


def retry_job(ctx: AppContext, user: CurrentUser, job_id: int) -> JobView:
    """Give a dead job a fresh set of tries, now."""
    user.require("admin")
    with ctx.session() as session:
        row = session.get(Job, job_id)
        if row is None or (row.org_id is not None and row.org_id != user.org_id):
            raise NotFound(_("No such job."))
        if row.state != "dead":
            raise Conflict(
                _("Only a failed job can be tried again; this one is %(state)s.") % {"state": row.state}
            )
        row.state, row.attempts, row.run_at, row.finished_at = "queued", 0, utcnow(), None
        row.last_error = (_("tried again by %(name)s; before: ") % {"name": user.name} + row.last_error)[
            :2000
        ]
        session.flush()
        view = _view(row)
        queue.notify(ctx, session)  # the workers wake when this commits
    queue._handed_over(ctx, job_id)
    return view

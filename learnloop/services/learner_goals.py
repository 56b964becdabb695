"""A learner's weekly goal and streak, for their home page.

Days and weeks are UTC days and ISO weeks starting Monday 00:00 UTC (the page says so). The
streak is the run of consecutive days with at least one answer, up to today; a day without
an answer yet today does not break it (it still counts through yesterday), so the page can
invite rather than warn. The learner sets the goal and can hide the streak."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select

from learnloop.errors import InvalidInput
from learnloop.i18n import _
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.guidance import PathView
from learnloop.store.models import LearnerGoal, Response, as_utc, utcnow

#: the largest weekly goal a learner can set
MAX_WEEKLY = 1000
#: how far back the streak looks (days)
STREAK_WINDOW = 400


class GoalView(BaseModel):
    #: answers a week the learner aims for (None: no goal set)
    weekly_answers: int | None
    show_streak: bool
    answers_this_week: int
    #: days of this week (Monday first) with at least one answer
    days_this_week: list[bool]
    streak_days: int
    practised_today: bool
    week_start: date
    #: the clock the days are counted in
    timezone: str = "UTC"


def streak(days: set[date], today: date) -> int:
    """Consecutive days with an answer, ending today (or yesterday, while today has none)."""
    day = today if today in days else today - timedelta(days=1)
    n = 0
    while day in days:
        n += 1
        day -= timedelta(days=1)
    return n


def goal(ctx: AppContext, user: CurrentUser, now: datetime | None = None) -> GoalView:
    now = as_utc(now or utcnow())
    today = now.date()
    week_start = today - timedelta(days=today.weekday())
    since = datetime.combine(today - timedelta(days=STREAK_WINDOW), datetime.min.time(), tzinfo=now.tzinfo)
    with ctx.session() as session:
        row = session.get(LearnerGoal, user.id)
        stamps = session.execute(
            select(Response.created_at).where(Response.user_id == user.id, Response.created_at >= since)
        ).scalars()
        days: dict[date, int] = {}
        for at in stamps:
            d = as_utc(at).date()
            days[d] = days.get(d, 0) + 1
    return GoalView(
        weekly_answers=row.weekly_answers if row else None,
        show_streak=row.show_streak if row else True,
        answers_this_week=sum(n for d, n in days.items() if week_start <= d <= today),
        days_this_week=[(week_start + timedelta(days=k)) in days for k in range(7)],
        streak_days=streak(set(days), today),
        practised_today=today in days,
        week_start=week_start,
    )


def set_goal(ctx: AppContext, user: CurrentUser, weekly_answers: int | None, show_streak: bool) -> GoalView:
    """Set (or, with None or 0, clear) the weekly goal, and whether the streak is shown."""
    if weekly_answers is not None and not 0 <= weekly_answers <= MAX_WEEKLY:
        raise InvalidInput(
            _("A weekly goal is between 1 and %(n)d answers (0: no goal).") % {"n": MAX_WEEKLY}
        )
    with ctx.session() as session:
        row = session.get(LearnerGoal, user.id)
        if row is None:
            row = LearnerGoal(user_id=user.id)
            session.add(row)
        row.weekly_answers = weekly_answers or None
        row.show_streak = show_streak
        row.updated_at = utcnow()
    return goal(ctx, user)


#: the most answers a suggested session asks for toward the next step (a sitting, not the path)
SESSION_STEP_ANSWERS = 10


class SessionSuggestion(BaseModel):
    """Today's suggested session: the due reviews once each, then a few answers on the next step."""

    answers: int
    minutes: int
    reviews: int


def suggested_session(ctx: AppContext, user: CurrentUser, path: PathView) -> SessionSuggestion | None:
    """A session length for today from the learner's own plan: one answer per due review and
    up to SESSION_STEP_ANSWERS toward the next step, at the plan's minutes per answer (the
    pack's mean item minutes where the plan has none left). None without a role or anything to do."""
    if not path.role_id:
        return None
    reviews = len(path.due_reviews)
    step = path.steps[0] if path.steps else None
    step_answers = min(math.ceil(step.answers), SESSION_STEP_ANSWERS) if step and step.answers > 0 else 0
    if reviews + step_answers == 0:
        return None
    if step and step.answers > 0 and step.minutes > 0:
        per_answer = step.minutes / step.answers
    elif path.answers_to_go > 0 and path.minutes_to_go > 0:
        per_answer = path.minutes_to_go / path.answers_to_go
    else:
        with ctx.session() as session:
            items = [i for i in ctx.active_pack(session, user.org_id).pack.items if not i.retired]
        per_answer = sum(i.minutes for i in items) / len(items) if items else 1.0
    answers = reviews + step_answers
    return SessionSuggestion(answers=answers, minutes=max(1, round(answers * per_answer)), reviews=reviews)

"""A learner's weekly goal and streak, for their home page.

Days and weeks are UTC days and ISO weeks starting Monday 00:00 UTC (the page says so). The
streak is the run of consecutive days with at least one answer, up to today; a day without
an answer yet today does not break it (it still counts through yesterday), so the page can
invite rather than warn. The learner sets the goal and can hide the streak."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select

from learnloop.errors import InvalidInput
from learnloop.i18n import _
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
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

"""Weekly goal and streak: counted in UTC days and Monday weeks, set by the learner, hidden on request."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from learnloop.errors import InvalidInput
from learnloop.services import learner_goals
from learnloop.services.context import AppContext
from learnloop.store.models import Response
from tests.llm.conftest import make_user


def test_streak_runs_through_yesterday_until_today_has_an_answer() -> None:
    today = date(2026, 12, 9)
    days = {today - timedelta(days=k) for k in (1, 2, 3, 5)}
    assert learner_goals.streak(days, today) == 3  # not broken yet today
    assert learner_goals.streak(days | {today}, today) == 4
    assert learner_goals.streak({today - timedelta(days=2)}, today) == 0
    assert learner_goals.streak(set(), today) == 0


def test_goal_and_week_from_the_answer_log(ctx: AppContext) -> None:
    user = make_user(ctx, enrol=None)
    now = datetime(2026, 12, 9, 10, 0, tzinfo=UTC)  # a Wednesday
    stamps = [now - timedelta(days=d, hours=h) for d, h in ((0, 1), (1, 0), (1, 2), (2, 0), (3, 0), (9, 0))]
    with ctx.session() as session:
        for n, at in enumerate(stamps):
            session.add(
                Response(
                    org_id=user.org_id,
                    user_id=user.id,
                    item_id=f"x{n}",
                    skills=["basics.tokens"],
                    kind="choice",
                    answer={"choice": "a"},
                    correct=True,
                    score=1.0,
                    created_at=at,
                )
            )
    view = learner_goals.goal(ctx, user, now)
    assert view.weekly_answers is None and view.show_streak  # defaults before the learner sets them
    assert view.week_start == date(2026, 12, 7)
    assert view.answers_this_week == 4  # Monday to today; Sunday's answer is last week's
    assert view.days_this_week == [True, True, True, False, False, False, False]
    assert view.streak_days == 4 and view.practised_today
    learner_goals.set_goal(ctx, user, 30, show_streak=False)
    view = learner_goals.goal(ctx, user, now)
    assert view.weekly_answers == 30 and not view.show_streak
    learner_goals.set_goal(ctx, user, 0, show_streak=True)
    assert learner_goals.goal(ctx, user, now).weekly_answers is None
    with pytest.raises(InvalidInput):
        learner_goals.set_goal(ctx, user, 5000, show_streak=True)

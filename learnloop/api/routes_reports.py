"""Reports as JSON under ``/api/v1/reports``: the same figures as the report pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from learnloop.deps import api_user, get_ctx
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.reports_items import ItemReport, item_report
from learnloop.services.reports_learner import LearnerReport, learner_report
from learnloop.services.reports_team import TeamReport, team_report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


@router.get("/me", response_model=LearnerReport)
def my_progress(user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)) -> LearnerReport:
    """The caller's mastery over time, per domain against the target role, reviews and credentials."""
    return learner_report(ctx, user)


@router.get("/learners/{user_id}", response_model=LearnerReport)
def learner_progress(
    user_id: int, user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> LearnerReport:
    """A member's progress: for their manager or an admin, and only when they consented (else 404)."""
    return learner_report(ctx, user, user_id)


@router.get("/team", response_model=TeamReport)
def team(
    team_id: int | None = Query(None, description="one team of your organisation; all when omitted"),
    role_id: str | None = Query(None, max_length=80, description="one target role; all when omitted"),
    user: CurrentUser = Depends(api_user),
    ctx: AppContext = Depends(get_ctx),
) -> TeamReport:
    """Managers and admins: heatmap, gap report, readiness per role and weekly trend.

    Figures over fewer than ``report_min_group`` people are null; names only for consenting direct reports.
    """
    return team_report(ctx, user, team_id, role_id)


@router.get("/items", response_model=ItemReport)
def items(user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)) -> ItemReport:
    """Instructors and admins: item statistics, flags and content coverage per skill."""
    return item_report(ctx, user)

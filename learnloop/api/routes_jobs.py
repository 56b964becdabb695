"""Background jobs over the API: a grade that a job is giving, and the jobs list for admins."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query

from learnloop.deps import api_user, get_ctx
from learnloop.jobs import admin as jobs_admin
from learnloop.services import practice
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext

router = APIRouter(prefix="/api/v1")


@router.get("/practice/grades/{presentation_id}", response_model=practice.Feedback, tags=["practice"])
def grade_status(
    presentation_id: str = Path(min_length=1, max_length=36),
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> practice.Feedback:
    """The feedback of an answer a model is grading in the background: ``grading`` is
    ``queued`` until the grade is in, then ``done`` with the grade and the mastery change."""
    return practice.grade_status(ctx, user, presentation_id)


@router.get("/admin/jobs", response_model=list[jobs_admin.JobView], tags=["operations"])
def list_jobs(
    state: str = Query("", max_length=20),
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> list[jobs_admin.JobView]:
    """The newest background jobs of the caller's organisation and the shared ones (admins)."""
    return jobs_admin.list_jobs(ctx, user, state)


@router.post("/admin/jobs/{job_id}/retry", response_model=jobs_admin.JobView, tags=["operations"])
def retry_job(
    job_id: int, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> jobs_admin.JobView:
    """Try a failed (dead-lettered) job again, with a fresh set of tries (admins)."""
    return jobs_admin.retry_job(ctx, user, job_id)

"""Pages of the background jobs: an answer being graded, and /admin/jobs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from learnloop.deps import get_ctx
from learnloop.i18n import _
from learnloop.jobs import admin as jobs_admin
from learnloop.services import practice
from learnloop.services.context import AppContext
from learnloop.web.render import render
from learnloop.web.routes import page_user

router = APIRouter(include_in_schema=False)


def _state_names() -> dict[str, str]:
    return {
        "queued": _("waiting"),
        "running": _("running"),
        "retry": _("waiting to try again"),
        "done": _("done"),
        "dead": _("failed"),
    }


@router.get("/practice/graded/{presentation_id}")
def graded_page(presentation_id: str, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    """An answer a model grades in the background: "being graded" until the grade is in."""
    user = page_user(request)
    feedback = practice.grade_status(ctx, user, presentation_id[:36])
    return render(request, "feedback.html", fb=feedback, presentation_id=presentation_id[:36])


@router.get("/admin/jobs")
def jobs_page(
    request: Request, state: str = Query("", max_length=20), ctx: AppContext = Depends(get_ctx)
) -> Response:
    user = page_user(request)
    return render(
        request,
        "admin_jobs.html",
        jobs=jobs_admin.list_jobs(ctx, user, state),
        counts=jobs_admin.counts(ctx, user),
        state=state,
        states=jobs_admin.STATES,
        job_states=_state_names(),
    )


@router.post("/admin/jobs/{job_id}/retry")
def jobs_retry(job_id: int, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    jobs_admin.retry_job(ctx, user, job_id)
    return RedirectResponse("/admin/jobs", status_code=303)

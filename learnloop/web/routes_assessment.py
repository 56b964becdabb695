"""Skill check pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from learnloop.deps import get_ctx
from learnloop.errors import LearnloopError
from learnloop.services import assessment, enrolment, practice
from learnloop.services.context import AppContext
from learnloop.web.render import render
from learnloop.web.routes import page_user

router = APIRouter(include_in_schema=False)


@router.get("/check")
def check_home(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    current = enrolment.role_of(ctx, user.id)
    return render(
        request,
        "check_start.html",
        roles=practice.list_roles(ctx),
        current=current,
        history=assessment.history(ctx, user),
    )


@router.post("/check")
def check_start(request: Request, role_id: str = Form(""), ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    state = assessment.start(ctx, user, role_id)
    check_id = state.next.assessment_id if state.next else state.result.assessment_id if state.result else 0
    return RedirectResponse(f"/check/{check_id}", status_code=303)


@router.get("/check/{assessment_id}")
def check_page(assessment_id: int, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    state = assessment.result(ctx, user, assessment_id)
    return render(request, "check.html", state=state)


@router.post("/check/{assessment_id}/answer")
def check_answer(
    assessment_id: int,
    request: Request,
    item_id: str = Form(""),
    choice: str | None = Form(None),
    value: str | None = Form(None),
    dont_know: str | None = Form(None),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    payload: dict[str, object] = {
        k: v for k, v in {"choice": choice, "value": value}.items() if v is not None
    }
    if dont_know:  # the "I don't know" button: counted as a wrong answer
        payload = {"dont_know": True}
    try:
        assessment.answer(ctx, user, assessment_id, item_id, payload)
    except LearnloopError as exc:
        if exc.status == 409:
            return RedirectResponse(f"/check/{assessment_id}", status_code=303)
        state = assessment.result(ctx, user, assessment_id)
        return render(request, "check.html", status_code=exc.status, state=state, error=exc.message)
    return RedirectResponse(f"/check/{assessment_id}", status_code=303)

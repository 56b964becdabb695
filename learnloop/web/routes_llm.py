"""Pages of the model features: the tutor panel and history, grade reviews, drafts, model usage."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from learnloop.deps import get_ctx
from learnloop.errors import InvalidInput, LearnloopError, NotFound
from learnloop.i18n import _
from learnloop.services import authoring, grading, llm_usage, practice, tutoring
from learnloop.services.context import AppContext
from learnloop.web.render import render
from learnloop.web.routes import page_user

router = APIRouter(include_in_schema=False)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _panel_url(item_id: str, lesson_id: str) -> str:
    if item_id:
        return f"/tutor/panel?item_id={quote(item_id, safe='')}"
    return f"/tutor/panel?lesson_id={quote(lesson_id, safe='')}" if lesson_id else "/tutor/panel"


@router.get("/tutor/panel")
def tutor_panel(
    request: Request,
    item_id: str = Query("", max_length=80),
    lesson_id: str = Query("", max_length=80),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    """The chat beside an item or lesson (shown in a frame, so it works without JavaScript);
    during a skill check only the reason it is silent (HTTP 403)."""
    user = page_user(request)
    refused = tutoring.refusal(ctx, user)
    if refused:
        return render(request, "llm_tutor_panel.html", status_code=403, conv=None, refused=refused)
    conv = tutoring.latest_conversation(ctx, user, item_id=item_id or None, lesson_id=lesson_id or None)
    return render(request, "llm_tutor_panel.html", conv=conv, item_id=item_id, lesson_id=lesson_id)


@router.post("/tutor/ask")
def tutor_ask(
    request: Request,
    question: str = Form(""),
    item_id: str = Form(""),
    lesson_id: str = Form(""),
    conversation_id: str = Form(""),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    conv_id = int(conversation_id) if conversation_id.isdigit() else None
    try:
        tutoring.ask(
            ctx, user, question, item_id=item_id or None, lesson_id=lesson_id or None, conversation_id=conv_id
        )
    except LearnloopError as exc:  # shown inside the panel's frame, not as a whole error page
        refused = tutoring.refusal(ctx, user)
        conv = None
        if not refused and not isinstance(exc, NotFound):
            conv = tutoring.latest_conversation(
                ctx, user, item_id=item_id or None, lesson_id=lesson_id or None
            )
        return render(
            request,
            "llm_tutor_panel.html",
            status_code=exc.status,
            conv=conv,
            item_id=item_id,
            lesson_id=lesson_id,
            error=None if refused else exc.message,
            refused=refused,
            question=question,
        )
    return _redirect(_panel_url(item_id, lesson_id) + "#latest")


@router.post("/tutor/new")
def tutor_new(
    request: Request,
    item_id: str = Form(""),
    lesson_id: str = Form(""),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    """Start over: the panel shows an empty chat (the old conversation stays in the history)."""
    page_user(request)
    return render(request, "llm_tutor_panel.html", conv=None, item_id=item_id, lesson_id=lesson_id)


@router.get("/tutor")
def tutor_history(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    return render(request, "llm_tutor_history.html", conversations=tutoring.conversations(ctx, user))


@router.get("/tutor/{conversation_id}")
def tutor_conversation(
    conversation_id: int, request: Request, ctx: AppContext = Depends(get_ctx)
) -> Response:
    user = page_user(request)
    return render(
        request, "llm_tutor_conversation.html", conv=tutoring.conversation(ctx, user, conversation_id)
    )


@router.post("/tutor/{conversation_id}/delete")
def tutor_delete(conversation_id: int, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    tutoring.delete_conversation(ctx, user, conversation_id)
    return _redirect("/tutor")


@router.post("/tutor-delete-all")
def tutor_delete_all(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    tutoring.delete_all_conversations(ctx, user)
    return _redirect("/tutor")


@router.get("/reviews")
def reviews_page(
    request: Request, status: str = Query("pending", max_length=20), ctx: AppContext = Depends(get_ctx)
) -> Response:
    user = page_user(request)
    return render(request, "llm_reviews.html", reviews=grading.review_queue(ctx, user, status), status=status)


@router.post("/reviews/{review_id}")
def reviews_decide(
    review_id: int,
    request: Request,
    verdict: str = Form(""),
    score: str = Form(""),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    if verdict not in ("correct", "incorrect"):
        raise InvalidInput(_("Choose correct or incorrect."))
    value = None
    if score.strip():
        try:
            value = float(score)
        except ValueError:
            raise InvalidInput(_("the score must be between 0 and 1")) from None
    grading.decide(ctx, user, review_id, verdict == "correct", value)
    return _redirect("/reviews")


@router.get("/authoring")
def authoring_page(
    request: Request, status: str = Query("pending", max_length=20), ctx: AppContext = Depends(get_ctx)
) -> Response:
    user = page_user(request)
    skills = practice.list_skills(ctx)
    return render(
        request,
        "llm_authoring.html",
        drafts=authoring.drafts(ctx, user, status),
        status=status,
        skills=skills,
        second_review=authoring.second_review_required(ctx, user),
        saved=request.query_params.get("saved", ""),
    )


@router.post("/authoring/generate")
def authoring_generate(
    request: Request,
    skill_id: str = Form(""),
    count: str = Form("3"),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    if not count.isdigit():
        raise InvalidInput(_("Ask for between 1 and %(n)d drafts.") % {"n": authoring.MAX_DRAFTS})
    authoring.generate_drafts(ctx, user, skill_id, int(count))
    return _redirect("/authoring")


@router.post("/authoring/drafts/{draft_id}")
def authoring_review(
    draft_id: int,
    request: Request,
    action: str = Form(""),
    item_yaml: str = Form(""),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    if action in ("approve", "save"):
        try:
            if action == "save":
                authoring.save_edits(ctx, user, draft_id, item_yaml)
            else:
                authoring.approve(ctx, user, draft_id, item_yaml or None)
        except LearnloopError as exc:
            skills = practice.list_skills(ctx)
            return render(
                request,
                "llm_authoring.html",
                status_code=exc.status,
                error=exc.message,
                details=exc.details,
                drafts=authoring.drafts(ctx, user, "pending"),
                status="pending",
                skills=skills,
                edited={draft_id: item_yaml},  # the instructor's edits stay in the form
                second_review=authoring.second_review_required(ctx, user),
                failed=draft_id,
            )
        if action == "save":
            return _redirect(f"/authoring?saved={draft_id}")
    elif action == "reject":
        authoring.reject(ctx, user, draft_id)
    else:
        raise InvalidInput(_("Choose approve, save for review or reject."))
    return _redirect("/authoring")


@router.get("/admin/llm")
def usage_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    return render(request, "llm_usage.html", report=llm_usage.usage_report(ctx, user))


@router.post("/admin/llm/budget")
def usage_budget(
    request: Request,
    monthly_usd: str = Form(""),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    try:
        value = float(monthly_usd)
    except ValueError:
        raise InvalidInput(_("the budget must be a number of US dollars between 0 and 10,000,000")) from None
    llm_usage.set_budget(ctx, user, value)
    return _redirect("/admin/llm")


def _form_float(raw: str) -> float | None:
    try:
        return float(raw) if raw.strip() else None
    except ValueError:
        raise InvalidInput(_("A quota must be a number, or empty for none.")) from None


def _form_int(raw: str) -> int | None:
    value = _form_float(raw)
    if value is not None and not 0 <= value < 1e12:
        raise InvalidInput(_("a token quota must be a whole number between 0 and 10^12"))
    return None if value is None else int(value)


@router.post("/admin/llm/quotas")
def usage_quotas(
    request: Request,
    user_monthly_tokens: str = Form("", max_length=13),
    user_monthly_usd: str = Form("", max_length=12),
    team_monthly_tokens: str = Form("", max_length=13),
    team_monthly_usd: str = Form("", max_length=12),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    quotas = llm_usage.Quotas(
        user_monthly_tokens=_form_int(user_monthly_tokens),
        user_monthly_usd=_form_float(user_monthly_usd),
        team_monthly_tokens=_form_int(team_monthly_tokens),
        team_monthly_usd=_form_float(team_monthly_usd),
    )
    llm_usage.set_quotas(ctx, user, quotas)
    return _redirect("/admin/llm")

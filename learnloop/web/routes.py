"""Server-rendered pages of the learning loop (Jinja2, forms, almost no JavaScript)."""

from __future__ import annotations

import json
import secrets
from typing import Any

import yaml
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from learnloop import i18n
from learnloop.deps import PRE_CSRF_COOKIE, SESSION_COOKIE, client_address, get_ctx, optional_user
from learnloop.errors import Conflict, InvalidInput, LearnloopError, NotFound, RateLimited
from learnloop.i18n import _
from learnloop.services import (
    answers,
    auth,
    authoring,
    enrolment,
    guidance,
    item_bank,
    learner_goals,
    organisation,
    packs,
    practice,
)
from learnloop.services import skill_page as skill_page_service
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.web.render import local_path, render

router = APIRouter(include_in_schema=False)
LOCALE_COOKIE = "learnloop_locale"


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def page_user(request: Request) -> CurrentUser:
    user = optional_user(request)
    if user is None:
        raise _LoginRequired()
    return user


class _LoginRequired(Exception):
    """Raised by pages that need a login; answered with a redirect to /login."""


def _anonymous_form(
    request: Request,
    template: str,
    status_code: int = 200,
    error: LearnloopError | None = None,
    **context: Any,
) -> Response:
    """A form shown before login (sign-up, login); it carries the pre-login CSRF token, or the
    login's own when someone already logged in opens it (the CSRF check reads that one then)."""
    user = optional_user(request)
    token = user.csrf_token if user else request.cookies.get(PRE_CSRF_COOKIE) or secrets.token_urlsafe(24)
    if error is not None:
        context.update(error=error.message, status_code=error.status)
    response = render(request, template, csrf_token=token, **{"status_code": status_code, **context})
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after)
    if user is None:
        secure = request.app.state.ctx.settings.cookie_secure
        response.set_cookie(PRE_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=secure)
    return response


def _login_response(ctx: AppContext, result: auth.LoginResult, target: str) -> Response:
    response = _redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        result.token,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure,
        max_age=ctx.settings.session_days * 86400,
    )
    response.set_cookie(LOCALE_COOKIE, result.user.locale, samesite="lax", secure=ctx.settings.cookie_secure)
    return response


#: where each role lands at ``/``: its own work, not the learner's home
ROLE_HOMES = {"manager": "/reports/team", "admin": "/admin", "instructor": "/reviews"}


@router.get("/")
def home(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = optional_user(request)
    if user is None:
        return render(request, "home.html")
    if user.role in ROLE_HOMES:
        return _redirect(ROLE_HOMES[user.role])
    home = guidance.learner_home(ctx, user)
    return render(
        request,
        "learner_home.html",
        home=home,
        goal=learner_goals.goal(ctx, user),
        session=learner_goals.suggested_session(ctx, user, home.path),
    )


@router.post("/home/goal")
def set_goal(
    request: Request,
    weekly_answers: str = Form("", max_length=10),
    show_streak: str = Form(""),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    text = weekly_answers.strip()
    if text and not text.isdigit():
        raise InvalidInput(_("A weekly goal is a whole number of answers (0: no goal)."))
    learner_goals.set_goal(ctx, user, int(text) if text else None, show_streak == "on")
    return _redirect("/#goal")


@router.get("/signup")
def signup_form(request: Request) -> Response:
    return _anonymous_form(request, "signup.html", form={})


@router.post("/signup")
def signup(
    request: Request,
    email: str = Form(""),
    name: str = Form(""),
    password: str = Form(""),
    join_code: str = Form(""),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    try:
        result = auth.signup(
            ctx,
            email=email,
            name=name,
            password=password,
            join_code=join_code,
            locale=i18n.get_locale(),
            address=client_address(request),
        )
    except LearnloopError as exc:
        return _anonymous_form(
            request, "signup.html", error=exc, form={"email": email, "name": name, "join_code": join_code}
        )
    return _login_response(ctx, result, "/roles")


@router.get("/login")
def login_form(request: Request, next: str = Query("", max_length=2000)) -> Response:
    return _anonymous_form(request, "login.html", form={"next": local_path(next, "")})


@router.post("/login")
def login(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    next: str = Form("", max_length=2000),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    try:
        result = auth.login(ctx, email=email, password=password, address=client_address(request))
    except LearnloopError as exc:
        return _anonymous_form(
            request, "login.html", error=exc, form={"email": email, "next": local_path(next, "")}
        )
    return _login_response(ctx, result, local_path(next, "/"))


@router.post("/logout")
def logout(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    page_user(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        auth.logout(ctx, token)
    response = _redirect("/")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{locale}")
def change_language(locale: str, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    if locale not in i18n.LOCALES:
        raise NotFound(_("Unknown language."))
    user = optional_user(request)
    if user is not None:
        auth.set_locale(ctx, user, locale)
    back = local_path(request.headers.get("referer"), "/", host=request.url.netloc)
    response = _redirect(back)
    response.set_cookie(LOCALE_COOKIE, locale, samesite="lax", secure=ctx.settings.cookie_secure)
    return response


@router.get("/roles")
def roles_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    current = enrolment.role_of(ctx, user.id)
    return render(request, "roles.html", roles=practice.list_roles(ctx), current=current)


@router.post("/roles")
def choose_role(request: Request, role_id: str = Form(""), ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    practice.enrol(ctx, user, role_id)
    return _redirect("/practice")


@router.get("/practice")
def practice_page(
    request: Request, skill: str | None = Query(None, max_length=120), ctx: AppContext = Depends(get_ctx)
) -> Response:
    """The learning loop; ``?skill=`` practises that skill (from the skill page) until the
    learner goes back to the path."""
    user = page_user(request)
    try:
        presented = practice.next_item(ctx, user, focus=skill or None)
    except Conflict:
        return _redirect("/roles")
    return render(request, "practice.html", p=presented, item=presented.item, focus=skill or None)


@router.post("/practice/hint")
def practice_hint(request: Request, item_id: str = Form(""), ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    practice.hint(ctx, user, item_id)
    return _redirect("/practice#hints")


@router.post("/practice/answer")
def practice_answer(
    request: Request,
    item_id: str = Form(""),
    choice: str | None = Form(None),
    value: str | None = Form(None),
    text: str | None = Form(None),
    code: str | None = Form(None),
    presentation_id: str | None = Form(None, max_length=36),
    focus: str | None = Form(None, max_length=120),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    focus = focus or None
    payload = {
        k: v
        for k, v in {"choice": choice, "value": value, "text": text, "code": code}.items()
        if v is not None
    }
    try:
        feedback = practice.answer(ctx, user, item_id, payload, presentation_id=presentation_id or None)
    except LearnloopError as exc:
        if exc.status in (409,):
            return _redirect("/practice")
        presented = practice.next_item(ctx, user)
        return render(
            request,
            "practice.html",
            status_code=exc.status,
            p=presented,
            item=presented.item,
            error=exc.message,
            previous=payload,
            focus=focus,
        )
    if feedback.attempts_left > 0:  # a wrong code answer with tries left: the same item again
        presented = practice.next_item(ctx, user)
        return render(
            request,
            "practice.html",
            p=presented,
            item=presented.item,
            previous=payload,
            retry=feedback,
            focus=focus,
        )
    given = answers.shown_answer_to(ctx, item_id, payload, user.org_id)
    return render(request, "feedback.html", fb=feedback, given=given, focus=focus)


@router.post("/practice/reveal")
def practice_reveal(
    request: Request,
    presentation_id: str = Form("", max_length=36),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    try:
        feedback = practice.reveal(ctx, user, presentation_id)
    except Conflict:
        return _redirect("/practice")
    return render(request, "feedback.html", fb=feedback)


@router.get("/skills")
def skills_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    skill_map = practice.skill_map(ctx, user.id)
    return render(request, "skills.html", sm=skill_map, sm_json=json.dumps(skill_map.model_dump()))


@router.get("/skills/{skill_id}")
def skill_page(skill_id: str, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    return render(request, "skill.html", s=skill_page_service.skill_page(ctx, user, skill_id))


@router.get("/lessons")
def lessons_page(
    request: Request, skill: str = Query("", max_length=80), ctx: AppContext = Depends(get_ctx)
) -> Response:
    page_user(request)
    domains = packs.lesson_index(ctx, skill_id=skill or None)
    return render(request, "lessons.html", domains=domains, skill=skill)


@router.get("/lessons/{lesson_id}")
def lesson_page(lesson_id: str, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    found = packs.lesson(ctx, lesson_id, reader=user)
    return render(request, "lesson.html", lesson=found, skill_names=found.skill_names)


@router.get("/admin")
def admin_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    return render(
        request,
        "admin.html",
        org=organisation.overview(ctx, user),
        roles=auth.ROLES,
        second_review=authoring.second_review_required(ctx, user),
    )


@router.post("/admin/publishing")
def admin_publishing(
    request: Request, second_review: str = Form("", max_length=10), ctx: AppContext = Depends(get_ctx)
) -> Response:
    """The organisation's publishing rule: drafts need a second reviewer (a checkbox)."""
    user = page_user(request)
    if second_review not in ("", "on"):
        raise InvalidInput(_("Tick the box or leave it empty."))
    authoring.set_second_review(ctx, user, second_review == "on")
    return _redirect("/admin")


@router.post("/admin/members/{user_id}")
def admin_update_member(
    user_id: int,
    request: Request,
    role: str = Form(""),
    team: str = Form(""),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    organisation.update_member(ctx, user, user_id, role=role, team=team)  # both or neither
    return _redirect("/admin")


@router.get("/items")
def items_page(
    request: Request,
    q: str = Query("", max_length=200),
    skill: str = Query("", max_length=80),
    kind: str = Query("", max_length=20),
    page: int = Query(1, ge=1, le=100_000),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    flt = item_bank.ItemFilter(q=q, skill=skill, kind=kind, page=page)
    return render(request, "items.html", bank=item_bank.item_page(ctx, user, flt), flt=flt)


@router.get("/items/{item_id}")
def item_page(item_id: str, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    preview = item_bank.item_preview(ctx, user, item_id)
    return render(
        request,
        "item_detail.html",
        preview=preview,
        item=preview.item,
        item_yaml=yaml.safe_dump(preview.source, sort_keys=False, allow_unicode=True, width=100),
    )

"""LTI 1.3 tool endpoints (platform-facing) and the admin page that registers platforms.

A thin adapter over ``services/lti.py``: the OIDC login (``/lti/login``), the launch
(``/lti/launch``), the organisation's key set (``/lti/jwks/{org}``), the instructor's deep-linking
choice (``/lti/deep-link/{state}``), score passback (``/lti/scores``) and
``/admin/standards/lti``. ``/lti/login`` and ``/lti/launch`` are posted by the platform, so the
app's CSRF check leaves them to their own proof (single-use state, signed id_token).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from learnloop.deps import SESSION_COOKIE, get_ctx
from learnloop.errors import Conflict, InvalidInput
from learnloop.i18n import _
from learnloop.services import lti
from learnloop.services.context import AppContext
from learnloop.web.render import render
from learnloop.web.routes import LOCALE_COOKIE, page_user
from learnloop.web.security import CONTENT_SECURITY_POLICY

router = APIRouter(include_in_schema=False)
STATE_COOKIE = "learnloop_lti_state"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _params(request: Request) -> dict[str, str]:
    """A login's parameters, from the query (GET) or the form (POST)."""
    values = {k: v for k, v in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        values.update({k: v for k, v in form.items() if isinstance(v, str)})
    return {k: v[:4000] for k, v in values.items()}


@router.api_route("/lti/login", methods=["GET", "POST"])
async def lti_login(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    from starlette.concurrency import run_in_threadpool

    p = await _params(request)
    url, state = await run_in_threadpool(
        lti.login,
        ctx,
        iss=p.get("iss", ""),
        login_hint=p.get("login_hint", ""),
        target_link_uri=p.get("target_link_uri", ""),
        lti_message_hint=p.get("lti_message_hint"),
        client_id=p.get("client_id"),
        base_url=_base(request),
    )
    response = RedirectResponse(url, status_code=302)
    secure = ctx.settings.cookie_secure
    # the platform posts the launch back cross-site: only a SameSite=None cookie comes with it
    response.set_cookie(
        STATE_COOKIE, state, max_age=600, httponly=True, secure=secure, samesite="none" if secure else "lax"
    )
    return response


@router.post("/lti/launch")
async def lti_launch(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    id_token, state = form.get("id_token"), form.get("state")
    if not isinstance(id_token, str) or not isinstance(state, str):
        raise lti.LtiForbidden(
            _("This launch could not be verified. Start again from your course."),
            details=["the launch carries no id_token or state"],
        )
    outcome = await run_in_threadpool(
        lti.launch, ctx, id_token=id_token, state=state, cookie_state=request.cookies.get(STATE_COOKIE)
    )
    response = RedirectResponse(outcome.redirect, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        outcome.login.token,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure,
        max_age=ctx.settings.session_days * 86400,
    )
    response.set_cookie(
        LOCALE_COOKIE, outcome.login.user.locale, samesite="lax", secure=ctx.settings.cookie_secure
    )
    response.delete_cookie(STATE_COOKIE)
    return response


@router.get("/lti/jwks/{org_slug}")
def lti_jwks(org_slug: str, ctx: AppContext = Depends(get_ctx)) -> Response:
    return JSONResponse(lti.jwks(ctx, org_slug))


@router.get("/lti/deep-link/{state}")
def deep_link_page(state: str, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    choices = lti.deep_link_choices(ctx, user, state)
    return render(request, "lti_deep_link.html", choices=choices, state=state, error=None)


@router.post("/lti/deep-link/{state}")
async def deep_link_choose(state: str, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    from starlette.concurrency import run_in_threadpool

    user = page_user(request)
    form = await request.form()
    targets = [str(t)[:200] for t in form.getlist("target")]
    try:
        url, token = await run_in_threadpool(
            lti.deep_link_response, ctx, user, state, targets, _base(request)
        )
    except InvalidInput as exc:
        choices = await run_in_threadpool(lti.deep_link_choices, ctx, user, state)
        return render(
            request, "lti_deep_link.html", choices=choices, state=state, error=exc.message, status_code=422
        )
    response = render(request, "lti_deep_link_return.html", return_url=url, jwt=token)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    # this one form posts to the platform
    response.headers["content-security-policy"] = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {origin}"
    )
    return response


@router.post("/lti/scores")
def send_scores(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    report = lti.passback(ctx, user)
    return render(request, "lti_scores.html", report=report)


@router.get("/admin/standards/lti")
def lti_admin(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    return render(request, "admin_lti.html", view=lti.admin_view(ctx, user, _base(request)), error=None)


@router.post("/admin/standards/lti")
def lti_register(
    request: Request,
    name: str = Form("", max_length=200),
    issuer: str = Form("", max_length=500),
    client_id: str = Form("", max_length=200),
    deployment_ids: str = Form("", max_length=2000),
    auth_login_url: str = Form("", max_length=500),
    auth_token_url: str = Form("", max_length=500),
    jwks_url: str = Form("", max_length=500),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    try:
        lti.register_platform(
            ctx,
            user,
            name=name,
            issuer=issuer,
            client_id=client_id,
            deployment_ids=deployment_ids.replace(",", " ").split(),
            auth_login_url=auth_login_url,
            auth_token_url=auth_token_url,
            jwks_url=jwks_url,
        )
    except (InvalidInput, Conflict) as exc:
        view = lti.admin_view(ctx, user, _base(request))
        return render(request, "admin_lti.html", view=view, error=exc.message, status_code=exc.status)
    return RedirectResponse("/admin/standards/lti", status_code=303)

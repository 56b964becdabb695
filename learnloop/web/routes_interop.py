"""Admin pages of the learning standards: the organisation's LRS (xAPI)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from learnloop.deps import get_ctx
from learnloop.errors import InvalidInput
from learnloop.services import xapi_outbox
from learnloop.services.context import AppContext
from learnloop.web.render import render
from learnloop.web.routes import page_user

router = APIRouter(include_in_schema=False)


@router.get("/admin/standards/xapi")
def xapi_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    return render(
        request, "admin_xapi.html", xs=xapi_outbox.settings_view(ctx, user), error=None, report=None
    )


@router.post("/admin/standards/xapi")
def xapi_save(
    request: Request,
    enabled: str = Form(""),
    endpoint: str = Form("", max_length=500),
    username: str = Form("", max_length=200),
    password: str = Form("", max_length=500),
    actor_mode: str = Form("account", max_length=10),
    home_page: str = Form("", max_length=500),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    try:
        xapi_outbox.save_settings(
            ctx,
            user,
            enabled=bool(enabled),
            endpoint=endpoint,
            username=username,
            password=password or None,
            actor_mode=actor_mode,
            home_page=home_page,
        )
    except InvalidInput as exc:
        view = xapi_outbox.settings_view(ctx, user)
        return render(request, "admin_xapi.html", xs=view, error=exc.message, report=None, status_code=422)
    return RedirectResponse("/admin/standards/xapi", status_code=303)


@router.post("/admin/standards/xapi/deliver")
def xapi_deliver(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    report = xapi_outbox.deliver_now(ctx, user)
    return render(
        request, "admin_xapi.html", xs=xapi_outbox.settings_view(ctx, user), error=None, report=report
    )

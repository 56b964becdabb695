"""Admin page of the outgoing webhooks: endpoints, their one-time secret, the delivery log."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from learnloop.deps import get_ctx
from learnloop.errors import InvalidInput
from learnloop.services.context import AppContext
from learnloop.services.people import webhooks
from learnloop.web.render import render
from learnloop.web.routes import page_user

router = APIRouter(include_in_schema=False)


def _page(
    request: Request, ctx: AppContext, *, new: webhooks.NewEndpoint | None = None, error: str | None = None
) -> Response:
    user = page_user(request)
    return render(
        request,
        "admin_webhooks.html",
        endpoints=webhooks.list_endpoints(ctx, user),
        deliveries=webhooks.deliveries(ctx, user),
        events=webhooks.EVENTS,
        new=new,
        error=error,
        status_code=422 if error else 200,
    )


@router.get("/admin/webhooks")
def webhooks_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    return _page(request, ctx)


@router.post("/admin/webhooks")
async def webhooks_create(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    form = await request.form()
    url = str(form.get("url", ""))[:1000]
    events = [str(e) for e in form.getlist("events")][: len(webhooks.EVENTS)]
    try:
        new = webhooks.create_endpoint(ctx, user, url, events)
    except InvalidInput as exc:
        return _page(request, ctx, error=exc.message)
    return _page(request, ctx, new=new)


@router.post("/admin/webhooks/{endpoint_id}/active")
def webhooks_toggle(
    request: Request, endpoint_id: int, active: str = Form(""), ctx: AppContext = Depends(get_ctx)
) -> Response:
    webhooks.set_active(ctx, page_user(request), endpoint_id, bool(active))
    return RedirectResponse("/admin/webhooks", status_code=303)

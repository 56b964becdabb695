"""The download of one's own data from ``/settings`` (``/settings/export?format=json|csv``) and
an admin's erasure of a deactivated member from ``/admin/people``, and the organisation's
retention after SCIM deprovisioning (``/admin/data-policy``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from learnloop.deps import download, get_ctx
from learnloop.errors import InvalidInput
from learnloop.i18n import _
from learnloop.services.context import AppContext
from learnloop.services.people import data_rights
from learnloop.web.render import local_path, render
from learnloop.web.routes import page_user

router = APIRouter(include_in_schema=False)


@router.get("/settings/export")
def settings_export(
    request: Request, format: str = Query("json"), ctx: AppContext = Depends(get_ctx)
) -> Response:
    return download(data_rights.export_file(ctx, page_user(request), None, format))


@router.post("/admin/people/{member_id}/erase")
def member_erase(
    member_id: int, request: Request, confirm: str = Form(""), ctx: AppContext = Depends(get_ctx)
) -> Response:
    if confirm != "yes":
        raise InvalidInput(_("Tick the box to confirm that the erasure cannot be undone."))
    data_rights.erase_member(ctx, page_user(request), member_id)
    back = local_path(request.headers.get("referer"), "/admin/people", host=request.url.netloc)
    return RedirectResponse(back, status_code=303)


@router.get("/admin/data-policy")
def data_policy_page(request: Request, saved: int = 0, ctx: AppContext = Depends(get_ctx)) -> Response:
    policy = data_rights.get_policy(ctx, page_user(request))
    return render(request, "data_policy.html", policy=policy, saved=bool(saved))


@router.post("/admin/data-policy")
def data_policy_save(
    request: Request,
    retention_days: str = Form(""),
    erase_on_deactivate: str = Form(""),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    text = retention_days.strip()
    if text and not text.isdigit():
        raise InvalidInput(_("The retention must be a whole number of days, or empty to keep."))
    days = int(text) if text else None
    data_rights.set_policy(ctx, page_user(request), days, erase_on_deactivate == "yes")
    return RedirectResponse("/admin/data-policy?saved=1", status_code=303)

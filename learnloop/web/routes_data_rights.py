"""The download of one's own data from ``/settings`` (``/settings/export?format=json|csv``) and
an admin's erasure of a deactivated member from ``/admin/people``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from learnloop.api.deps import get_ctx
from learnloop.api.routes_data_rights import export_response
from learnloop.errors import InvalidInput
from learnloop.i18n import _
from learnloop.services.context import AppContext
from learnloop.services.people import data_rights
from learnloop.web.render import local_path
from learnloop.web.routes import page_user

router = APIRouter(include_in_schema=False)


@router.get("/settings/export")
def settings_export(
    request: Request, format: str = Query("json"), ctx: AppContext = Depends(get_ctx)
) -> Response:
    return export_response(ctx, page_user(request), None, format)


@router.post("/admin/people/{member_id}/erase")
def member_erase(
    member_id: int, request: Request, confirm: str = Form(""), ctx: AppContext = Depends(get_ctx)
) -> Response:
    if confirm != "yes":
        raise InvalidInput(_("Tick the box to confirm that the erasure cannot be undone."))
    data_rights.erase_member(ctx, page_user(request), member_id)
    back = local_path(request.headers.get("referer"), "/admin/people", host=request.url.netloc)
    return RedirectResponse(back, status_code=303)

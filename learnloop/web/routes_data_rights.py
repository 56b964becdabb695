"""The download of one's own data from ``/settings`` (``/settings/export?format=json|csv``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from learnloop.api.deps import get_ctx
from learnloop.api.routes_data_rights import export_response
from learnloop.services.context import AppContext
from learnloop.web.routes import page_user

router = APIRouter(include_in_schema=False)


@router.get("/settings/export")
def settings_export(
    request: Request, format: str = Query("json"), ctx: AppContext = Depends(get_ctx)
) -> Response:
    return export_response(ctx, page_user(request), None, format)

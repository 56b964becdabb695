"""Personal data rights over JSON: export (``/api/v1/me/export``, an admin's
``/api/v1/people/{id}/export``), erasure (``POST /api/v1/people/{id}/erase``) and the
organisation's deprovisioning retention (``/api/v1/org/data-policy``).

Handlers only translate HTTP to :mod:`learnloop.services.people.data_rights`, which checks roles,
scopes every query to the caller's organisation and owns the transactions.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from learnloop.deps import api_user, download, get_ctx
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.people import data_rights

router = APIRouter(prefix="/api/v1", tags=["people"])

#: what an export download can be: one JSON document, or a zip of one CSV per table
EXPORT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "the export (format=json: one document; format=csv: a zip)",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def export_response(ctx: AppContext, user: CurrentUser, member_id: int | None, fmt: str) -> Response:
    """The export as a download (``data_rights.export_file``)."""
    return download(data_rights.export_file(ctx, user, member_id, fmt))


@router.get("/me/export", response_class=Response, responses=EXPORT_RESPONSES)
def export_me(
    format: str = Query("json"), ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> Response:
    """Download everything stored about you: ``format=json`` or ``format=csv`` (a zip)."""
    return export_response(ctx, user, None, format)


@router.get("/people/{member_id}/export", response_class=Response, responses=EXPORT_RESPONSES)
def export_member(
    member_id: int,
    format: str = Query("json"),
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> Response:
    """Admin: download everything stored about a member of your organisation."""
    return export_response(ctx, user, member_id, format)


@router.post("/people/{member_id}/erase", response_model=data_rights.ErasureResult)
def erase_member(
    member_id: int, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> data_rights.ErasureResult:
    """Admin: erase a member's personal data; answers stay as anonymous rows. Logged; 409 when
    the member was already erased."""
    return data_rights.erase_member(ctx, user, member_id)


class DataPolicyIn(BaseModel):
    """``deprovision_retention_days``: null keeps deprovisioned members (deactivated only), 0
    erases them at SCIM DELETE, N erases them N days later. ``erase_on_deactivate``: SCIM
    ``active=false`` counts as deprovisioning too."""

    deprovision_retention_days: int | None = Field(default=None, ge=0, le=data_rights.MAX_RETENTION_DAYS)
    erase_on_deactivate: bool = False


@router.get("/org/data-policy", response_model=data_rights.DataPolicy)
def get_data_policy(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> data_rights.DataPolicy:
    return data_rights.get_policy(ctx, user)


@router.put("/org/data-policy", response_model=data_rights.DataPolicy)
def set_data_policy(
    body: DataPolicyIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> data_rights.DataPolicy:
    return data_rights.set_policy(ctx, user, body.deprovision_retention_days, body.erase_on_deactivate)

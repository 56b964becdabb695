"""Open Badges 3.0 under ``/api/v1/badges``: a learner's credentials, download, revocation.

The public verification answer is ``GET /credentials/<id>`` (``web/routes_badges.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from learnloop.deps import api_user, get_ctx
from learnloop.services import badges
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext

router = APIRouter(prefix="/api/v1/badges", tags=["standards"])


class RevokeIn(BaseModel):
    reason: str = Field("", max_length=500)


@router.get("", response_model=list[badges.CredentialView])
def my_credentials(
    user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> list[badges.CredentialView]:
    """The caller's Open Badges credentials (one per role made ready)."""
    return badges.my_credentials(ctx, user)


@router.post("/check", response_model=list[badges.CredentialView])
def check_now(
    user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> list[badges.CredentialView]:
    """Issue the caller's credential now if their role is ready (answers do this on their own)."""
    badges.check_now(ctx, user)
    return badges.my_credentials(ctx, user)


@router.get("/settings", response_model=badges.BadgeSettingsView)
def get_settings(
    user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> badges.BadgeSettingsView:
    """Admins: the organisation's badge settings (skill credentials on or off)."""
    return badges.badge_settings(ctx, user)


@router.put("/settings", response_model=badges.BadgeSettingsView)
def put_settings(
    body: badges.BadgeSettingsView, user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> badges.BadgeSettingsView:
    """Admins: issue (or not) a credential for each skill of a learner's role once it is met."""
    return badges.set_skill_badges(ctx, user, body.skill_badges)


@router.get("/issued", response_model=list[badges.CredentialView])
def issued(
    user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> list[badges.CredentialView]:
    """Admins: every credential the organisation issued."""
    return badges.org_credentials(ctx, user)


@router.get("/{credential_id}/credential.json")
def download(
    credential_id: str, user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> JSONResponse:
    """The signed OpenBadgeCredential (its learner, or an admin of the organisation)."""
    document: dict[str, Any] = badges.download(ctx, user, credential_id)
    return JSONResponse(
        document,
        media_type="application/vc+ld+json",
        headers={"Content-Disposition": f'attachment; filename="credential-{credential_id[:36]}.json"'},
    )


@router.post("/{credential_id}/revoke", response_model=badges.CredentialView)
def revoke(
    credential_id: str,
    body: RevokeIn,
    user: CurrentUser = Depends(api_user),
    ctx: AppContext = Depends(get_ctx),
) -> badges.CredentialView:
    """Admins of the issuing organisation: revoke a credential."""
    return badges.revoke(ctx, user, credential_id, body.reason)

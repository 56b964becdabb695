"""Open Badges 3.0 pages: the public verification answer and the learner's credentials."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from learnloop.deps import get_ctx
from learnloop.errors import LearnloopError, NotFound
from learnloop.i18n import _
from learnloop.services import badges
from learnloop.services.context import AppContext
from learnloop.web.render import render
from learnloop.web.routes import page_user

router = APIRouter(include_in_schema=False)
_ID = re.compile(r"^[0-9a-f-]{36}$")


@router.get("/badges/status/{slug}")
def status_list(slug: str, ctx: AppContext = Depends(get_ctx)) -> Response:
    """Public: the organisation's Bitstring Status List credential (revocations), signed."""
    try:
        document = badges.status_list_credential(ctx, slug)
    except NotFound as exc:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=404)
    return JSONResponse(document, media_type="application/vc+ld+json", headers={"Cache-Control": "no-store"})


@router.get("/badges/images/{slug}/{kind}/{ident}.svg")
def badge_image(slug: str, kind: str, ident: str, ctx: AppContext = Depends(get_ctx)) -> Response:
    """Public: the SVG image of an achievement (Achievement.image of the credentials)."""
    try:
        svg = badges.badge_image(ctx, slug, kind, ident)
    except NotFound as exc:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=404)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/credentials/{credential_id}")
def verify_credential(credential_id: str, ctx: AppContext = Depends(get_ctx)) -> Response:
    """Public (no login): the credential, whether its proof verifies, and whether it was revoked."""
    try:
        if not _ID.match(credential_id):
            raise NotFound(_("No such credential."))
        found = badges.verification(ctx, credential_id)
    except NotFound as exc:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=404)
    return JSONResponse(found.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


@router.get("/credentials")
def credentials_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    issued = badges.org_credentials(ctx, user) if user.role == "admin" else []
    settings = badges.badge_settings(ctx, user) if user.role == "admin" else None
    return render(
        request,
        "credentials.html",
        mine=badges.my_credentials(ctx, user),
        issued=issued,
        settings=settings,
        error=None,
    )


@router.post("/credentials/settings")
def save_settings(
    request: Request, skill_badges: str = Form(""), ctx: AppContext = Depends(get_ctx)
) -> Response:
    """Admins: whether learners also get a credential per skill of their role they meet."""
    user = page_user(request)
    badges.set_skill_badges(ctx, user, skill_badges == "on")
    return RedirectResponse("/credentials", status_code=303)


@router.get("/credentials/{credential_id}/download")
def download(credential_id: str, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    document = badges.download(ctx, user, credential_id)
    return JSONResponse(
        document,
        media_type="application/vc+ld+json",
        headers={"Content-Disposition": f'attachment; filename="credential-{credential_id[:36]}.json"'},
    )


@router.post("/credentials/check")
def check(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    badges.check_now(ctx, user)
    return RedirectResponse("/credentials", status_code=303)


@router.post("/credentials/{credential_id}/revoke")
def revoke(
    credential_id: str,
    request: Request,
    reason: str = Form("", max_length=500),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    try:
        badges.revoke(ctx, user, credential_id, reason)
    except LearnloopError as exc:
        issued = badges.org_credentials(ctx, user) if user.role == "admin" else []
        return render(
            request,
            "credentials.html",
            mine=badges.my_credentials(ctx, user),
            issued=issued,
            settings=badges.badge_settings(ctx, user) if user.role == "admin" else None,
            error=exc.message,
        )
    return RedirectResponse("/credentials", status_code=303)

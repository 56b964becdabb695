"""Learning standards under ``/api/v1/interop``: the organisation's LRS (xAPI)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from learnloop.deps import api_user, get_ctx
from learnloop.services import case_io, lti, qti_io, xapi_outbox
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext

router = APIRouter(prefix="/api/v1/interop", tags=["standards"])


class XapiSettingsIn(BaseModel):
    enabled: bool = True
    endpoint: str = Field(
        max_length=500, description="the LRS's xAPI base, e.g. https://lrs.example.org/xAPI/"
    )
    username: str = Field("", max_length=200)
    password: str | None = Field(None, max_length=500, description="omit (or empty) to keep the stored one")
    actor_mode: str = Field("account", max_length=10, description="account (default) or mbox (e-mail)")
    home_page: str = Field(max_length=500, description="accounts' homePage and base of activity ids")


@router.get("/xapi", response_model=xapi_outbox.XapiSettingsView)
def xapi_settings(
    user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> xapi_outbox.XapiSettingsView:
    """Admins: the organisation's LRS and its outbox (the password is never shown)."""
    return xapi_outbox.settings_view(ctx, user)


@router.put("/xapi", response_model=xapi_outbox.XapiSettingsView)
def save_xapi_settings(
    body: XapiSettingsIn, user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> xapi_outbox.XapiSettingsView:
    """Admins: set the organisation's LRS; statements are queued from then on."""
    return xapi_outbox.save_settings(ctx, user, **body.model_dump())


@router.post("/xapi/deliver", response_model=xapi_outbox.DeliveryReport)
def deliver(
    user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> xapi_outbox.DeliveryReport:
    """Admins: send the organisation's due statements now (workers do this on their own)."""
    return xapi_outbox.deliver_now(ctx, user)


class PlatformIn(BaseModel):
    name: str = Field(max_length=200)
    issuer: str = Field(max_length=500)
    client_id: str = Field(max_length=200)
    deployment_ids: list[str] = Field(max_length=50)
    auth_login_url: str = Field(max_length=500)
    auth_token_url: str = Field(max_length=500)
    jwks_url: str = Field(max_length=500)


@router.get("/lti", response_model=lti.LtiAdminView)
def lti_platforms(
    request: Request, user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> lti.LtiAdminView:
    """Admins: this tool's URLs for the platform, and the registered platforms."""
    return lti.admin_view(ctx, user, str(request.base_url))


@router.post("/lti/platforms", response_model=lti.PlatformView, status_code=201)
def register_platform(
    body: PlatformIn, user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> lti.PlatformView:
    """Admins: register an LTI 1.3 platform for the organisation (the tool key is made once)."""
    return lti.register_platform(ctx, user, **body.model_dump())


@router.delete("/lti/platforms/{platform_id}", status_code=204)
def delete_platform(
    platform_id: int, user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> None:
    """Admins: remove a platform with its account links (the accounts stay)."""
    lti.delete_platform(ctx, user, platform_id)


@router.get("/case")
def case_export(
    request: Request,
    version: str = "1.1",
    user: CurrentUser = Depends(api_user),
    ctx: AppContext = Depends(get_ctx),
) -> JSONResponse:
    """Instructors and managers: the active framework as a CASE 1.1 CFPackage (``?version=1.0``:
    CASE 1.0)."""
    base = str(request.base_url).rstrip("/") + "/case"
    return JSONResponse(case_io.export_case(ctx, user, base, version))


@router.post("/case/import", response_model=case_io.CaseDraft)
async def case_import(
    request: Request, user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> case_io.CaseDraft:
    """Instructors: check a CFPackage (the request body) and get the pack draft it makes.
    Nothing is stored; a package that cannot be imported is a 422 listing each problem by its
    JSON path."""
    from starlette.concurrency import run_in_threadpool

    body = await request.body()
    return await run_in_threadpool(case_io.import_case, ctx, user, body)


@router.get(
    "/moodle.csv",
    response_class=Response,
    responses={
        200: {"description": "the framework as CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
def moodle_export(user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)) -> Response:
    """Instructors and managers: the framework as Moodle's competency-framework CSV."""
    return Response(
        case_io.moodle_csv(ctx, user),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="framework-moodle.csv"'},
    )


@router.get(
    "/qti",
    response_class=Response,
    responses={
        200: {
            "description": "a QTI 3.0 content package",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def qti_export(user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)) -> Response:
    """Instructors: the active pack's choice, numeric and text items as a QTI 3.0 package (zip)."""
    data, skipped = qti_io.export_qti(ctx, user)
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": 'attachment; filename="items-qti3.zip"',
            "X-Learnloop-Skipped": ",".join(skipped)[:2000],
        },
    )


@router.post("/qti/import", response_model=qti_io.QtiImport)
async def qti_import(
    request: Request, user: CurrentUser = Depends(api_user), ctx: AppContext = Depends(get_ctx)
) -> qti_io.QtiImport:
    """Instructors: check a QTI 3.0 package (the request body, a zip) and get its items as
    pack items. Nothing is stored; unsupported interactions, DTDs/entities, zip bombs and
    unknown skills are a 422 listing each problem by file."""
    from starlette.concurrency import run_in_threadpool

    body = await request.body()
    items = await run_in_threadpool(qti_io.import_qti, ctx, user, body)
    return qti_io.QtiImport(items=[i.model_dump(mode="json", exclude_none=True) for i in items])

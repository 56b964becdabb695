"""Admin pages of the learning standards: the organisation's LRS (xAPI), and the exchange of the
framework (CASE, Moodle CSV) and items (QTI 3.0) with other tools."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from learnloop.deps import get_ctx
from learnloop.errors import InvalidInput, NotFound, TooLarge
from learnloop.i18n import _
from learnloop.services import case_io, exchange, qti_io, xapi_outbox
from learnloop.services.context import AppContext
from learnloop.web.render import render
from learnloop.web.routes import page_user

router = APIRouter(include_in_schema=False)


class XapiForm(BaseModel):
    """The LRS settings form (admin_xapi.html): an unticked box sends nothing, an empty password
    keeps the stored one."""

    enabled: str = ""
    endpoint: str = Field("", max_length=500)
    username: str = Field("", max_length=200)
    password: str = Field("", max_length=500)
    actor_mode: str = Field("account", max_length=10)
    home_page: str = Field("", max_length=500)

    def settings(self) -> dict[str, Any]:
        """The keyword arguments of ``xapi_outbox.save_settings``."""
        return {**self.model_dump(), "enabled": bool(self.enabled), "password": self.password or None}


class UploadForm(BaseModel):
    """The exchange upload form (admin_exchange.html). The site takes no multipart uploads: the
    file comes base64-encoded in ``data_b64`` (the page's script reads the chosen file), or a
    CASE document pasted in ``content``."""

    format: str = Field("case", max_length=10)
    action: str = Field("check", max_length=10)
    content: str = Field("", max_length=250_000)
    data_b64: str = Field("", max_length=250_000)
    filename: str = Field("", max_length=200)

    def data(self) -> bytes:
        """The uploaded bytes; InvalidInput where the base64 does not decode or nothing came."""
        if self.data_b64:
            try:
                data = base64.b64decode(self.data_b64, validate=True)
            except (ValueError, binascii.Error):
                raise InvalidInput(_("The file could not be read; choose it again.")) from None
        else:
            data = self.content.encode()
        if not data:
            raise InvalidInput(_("Choose a file or paste a CASE document."))
        return data


@router.get("/admin/standards/xapi")
def xapi_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    return render(
        request, "admin_xapi.html", xs=xapi_outbox.settings_view(ctx, user), error=None, report=None
    )


@router.post("/admin/standards/xapi")
def xapi_save(
    request: Request, form: Annotated[XapiForm, Form()], ctx: AppContext = Depends(get_ctx)
) -> Response:
    user = page_user(request)
    try:
        xapi_outbox.save_settings(ctx, user, **form.settings())
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


# --- exchange: CASE and QTI export, import with a dry run ----------------------------------------


def _exchange(request: Request, ctx: AppContext, report: Any = None, error: str | None = None) -> Response:
    user = page_user(request)
    user.require("instructor")
    return render(
        request,
        "admin_exchange.html",
        report=report,
        error=error,
        status_code=422 if error or (report is not None and not report.ok) else 200,
    )


@router.get("/admin/exchange")
def exchange_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    """Instructors and admins: download the framework (CASE 1.1 or 1.0, Moodle CSV) and the items
    (QTI 3.0); upload a CASE or QTI file, check it (every problem listed), then import it."""
    return _exchange(request, ctx)


@router.get("/admin/exchange/download/{what}")
def exchange_download(what: str, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    base = str(request.base_url).rstrip("/") + "/case"
    if what in ("case-1.1.json", "case-1.0.json"):
        version = what.removeprefix("case-").removesuffix(".json")
        body = json.dumps(case_io.export_case(ctx, user, base, version), ensure_ascii=False, indent=1)
        return Response(
            body.encode(),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="framework-case-{version}.json"'},
        )
    if what == "moodle.csv":
        return Response(
            case_io.moodle_csv(ctx, user).encode(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="framework-moodle.csv"'},
        )
    if what == "qti.zip":
        data, _skipped = qti_io.export_qti(ctx, user)
        return Response(
            data,
            media_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="items-qti3.zip"'},
        )
    raise NotFound(_("No such download."))


@router.post("/admin/exchange/upload")
def exchange_upload(
    request: Request, form: Annotated[UploadForm, Form()], ctx: AppContext = Depends(get_ctx)
) -> Response:
    """``action`` check: the dry run; import: QTI items become drafts in the review queue, a
    CASE framework comes back as a pack draft folder (zip). Every problem is listed."""
    user = page_user(request)
    name, format, action = form.filename or "upload", form.format, form.action
    try:
        data = form.data()
    except InvalidInput as exc:
        return _exchange(request, ctx, error=exc.message)
    try:
        if action == "import" and format == "case":
            pack_id, zipped = exchange.case_draft_zip(ctx, user, data)
            return Response(
                zipped,
                media_type="application/zip",
                headers={"Content-Disposition": f'attachment; filename="{pack_id}-draft.zip"'},
            )
        if action == "import" and format == "qti":
            report = exchange.import_qti_drafts(ctx, user, name, data)
        else:
            report = exchange.check(ctx, user, format, name, data)
    except (InvalidInput, TooLarge) as exc:
        report = exchange.ExchangeReport(
            format=format[:10], filename=name, ok=False, problems=list(exc.details or []) or [exc.message]
        )
    return _exchange(request, ctx, report=report)

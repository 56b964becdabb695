"""The ASGI application: JSON API and web pages over the same services.

Cross-cutting concerns are wired here once: the body cap, security headers and request metrics
(ASGI middleware), the CSRF check (a dependency of every route), the error envelope of the API
and the error page of the web, and the error answers declared in the OpenAPI document.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import swagger_ui_bundle
from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from learnloop import i18n, metrics
from learnloop.api import routes_jobs as api_routes_jobs
from learnloop.api.envelope import API_ERRORS
from learnloop.deps import csrf_protect, optional_user
from learnloop.errors import LearnloopError, RateLimited
from learnloop.jobs import queue as jobs_queue
from learnloop.jobs.runners import start_in_process
from learnloop.metrics import RequestMetrics
from learnloop.services.context import AppContext
from learnloop.web import routes as web_routes
from learnloop.web import routes_jobs as web_routes_jobs
from learnloop.web.render import render
from learnloop.web.security import BodyLimit, SecurityHeaders

log = logging.getLogger("learnloop")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


class RequestSetup:
    """ASGI middleware, innermost of ours: no file uploads (415), and the request's language
    (the locale cookie, else Accept-Language). A plain ASGI class, not ``@app.middleware``:
    Starlette's ``BaseHTTPMiddleware`` runs the rest of the app in a task of its own with
    streams between them, on every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if request.method == "POST" and request.headers.get("content-type", "").startswith("multipart/"):
            response = _error(request, 415, "unsupported_media_type", "file uploads are not accepted here")
            await response(scope, receive, send)
            return
        locale = request.cookies.get(web_routes.LOCALE_COOKIE) or i18n.negotiate(
            request.headers.get("accept-language")
        )
        i18n.set_locale(locale)
        await self.app(scope, receive, send)


def _error(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if request.url.path.startswith("/scim/"):
        return _scim_error(status, message, details, headers)
    if _is_api(request):
        return JSONResponse(
            {"error": {"code": code, "message": message, "details": details or []}},
            status_code=status,
            headers=headers,
        )
    response = render(
        request, "error.html", status_code=status, status=status, message=message, details=details or []
    )
    response.headers.update(headers or {})
    return response


def _scim_error(
    status: int, message: str, details: list[str] | None, headers: dict[str, str] | None
) -> Response:
    """An error of the SCIM endpoints as RFC 7644 describes it (invalid input is a 400 there)."""
    scim_status = 400 if status == 422 else status
    body: dict[str, object] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(scim_status),
        "detail": "; ".join([message, *(details or [])])[:1000],
    }
    scim_type = {422: "invalidValue", 409: "uniqueness"}.get(status)
    if scim_type:
        body["scimType"] = scim_type
    return JSONResponse(body, status_code=scim_status, headers=headers, media_type="application/scim+json")


def _too_large(scope: dict, limit: int) -> Response:  # type: ignore[type-arg]
    return _error(Request(scope), 413, "too_large", f"request body over {limit} bytes")


def _api_routers() -> list[APIRouter]:
    from learnloop.api import (
        routes,
        routes_assessment,
        routes_badges,
        routes_data_rights,
        routes_guidance,
        routes_interop,
        routes_llm,
        routes_ops,
        routes_people,
        routes_reports,
        routes_scim,
        routes_webhooks,
    )

    return [
        routes.router,
        api_routes_jobs.router,
        routes_people.router,
        routes_data_rights.router,
        routes_scim.router,
        routes_reports.router,
        routes_assessment.router,
        routes_guidance.router,
        routes_llm.router,
        routes_interop.router,
        routes_badges.router,
        routes_ops.router,
        routes_webhooks.router,
    ]


def _web_routers() -> list[APIRouter]:
    from learnloop.web import (
        routes_assessment,
        routes_badges,
        routes_data_rights,
        routes_guidance,
        routes_interop,
        routes_llm,
        routes_lti,
        routes_people,
        routes_reports,
        routes_webhooks,
    )

    return [
        web_routes.router,
        web_routes_jobs.router,
        routes_people.router,
        routes_data_rights.router,
        routes_reports.router,
        routes_assessment.router,
        routes_guidance.router,
        routes_llm.router,
        routes_interop.router,
        routes_lti.router,
        routes_badges.router,
        routes_webhooks.router,
    ]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    from learnloop.services import tutoring

    # the route handlers' threads (anyio's default is 40 a process): request_threads at once,
    # the others wait their turn instead of taking turns at the interpreter lock
    to_thread.current_default_thread_limiter().total_tokens = app.state.ctx.settings.request_threads
    tutoring.start_warm_up(app.state.ctx)  # models load in the background; /healthz waits for them
    # the job worker of this process (LEARNLOOP_JOBS_WORKER=thread; "off" leaves jobs to
    # `learnloop worker`)
    worker = start_in_process(app.state.ctx)
    try:
        yield
    finally:
        if worker is not None:
            worker.stop()


def create_app(ctx: AppContext | None = None) -> FastAPI:
    ctx = ctx or AppContext()
    app = FastAPI(
        title="Learnloop API",
        version="0.1.0",
        description="Adaptive, measured learning toward AI-era roles. Authenticate with the token "
        "from /api/v1/auth/login as `Authorization: Bearer <token>`. Cookie-authenticated writes "
        "(the web pages) carry their login's CSRF token as `X-CSRF-Token`.",
        docs_url=None,
        openapi_url="/api/v1/openapi.json",
        redoc_url=None,
        # one CSRF check for every route, including those added later (tests/security)
        dependencies=[Depends(csrf_protect)],
        lifespan=_lifespan,
    )
    app.state.ctx = ctx
    metrics.register_queue_depth("jobs", lambda: jobs_queue.depth(ctx))

    app.add_middleware(RequestSetup)
    # outermost last: headers on every answer, then timing, then the body cap
    app.add_middleware(BodyLimit, max_bytes=ctx.settings.max_body_bytes, too_large=_too_large)
    app.add_middleware(RequestMetrics)
    app.add_middleware(SecurityHeaders, settings=ctx.settings)

    @app.exception_handler(LearnloopError)
    async def learnloop_error(request: Request, exc: LearnloopError) -> Response:
        optional_user(request)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        return _error(request, exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(web_routes._LoginRequired)
    async def login_required(request: Request, exc: Exception) -> Response:
        target = "/login"
        if request.method == "GET" and request.url.path != "/login":
            from urllib.parse import quote

            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            target += "?next=" + quote(here, safe="/")
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        details = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _error(request, 422, "invalid_input", "the request is not valid", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 413:
            return _error(request, 413, "too_large", str(exc.detail))
        messages = {404: "not found", 405: "method not allowed"}
        if not _is_api(request):
            optional_user(request)  # an error page keeps the signed-in header
            if exc.status_code == 404:
                return _error(request, 404, "http_error", i18n.gettext_("There is no page at this address."))
        return _error(request, exc.status_code, "http_error", messages.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(DBAPIError)
    async def database_unavailable(request: Request, exc: DBAPIError) -> Response:
        # the database went away (restarted, connections cut, a pool or statement timeout): the
        # transaction was rolled back, so nothing of the request was stored; the client may try
        # again. Any other database error is a bug: the 500 below.
        from learnloop.store.db import is_unavailable

        if not is_unavailable(exc):
            log.exception("unexpected database error on %s", request.url.path)
            return _error(
                request, 500, "internal_error", "something went wrong on our side; nothing was saved"
            )
        log.warning("database unavailable on %s: %s", request.url.path, type(exc.orig).__name__)
        return _error(
            request,
            503,
            "unavailable",
            i18n.gettext_("The database is unavailable for a moment; nothing was saved. Please try again."),
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return _error(request, 500, "internal_error", "something went wrong on our side; nothing was saved")

    for router in _api_routers():
        app.include_router(router, responses=API_ERRORS)
    for router in _web_routers():
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")
    app.mount(
        "/api/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets"
    )
    return app

"""The ASGI application: JSON API and web pages over the same services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from learnloop import i18n
from learnloop.api.deps import optional_user
from learnloop.api.routes import router as api_router
from learnloop.api.routes_reports import router as api_reports_router
from learnloop.errors import LearnloopError
from learnloop.services.context import AppContext
from learnloop.web import routes as web_routes
from learnloop.web import routes_reports as web_reports
from learnloop.web.render import render

log = logging.getLogger("learnloop")
MAX_BODY_BYTES = 256_000


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(
    request: Request, status: int, code: str, message: str, details: list[str] | None = None
) -> Response:
    if _is_api(request):
        return JSONResponse(
            {"error": {"code": code, "message": message, "details": details or []}}, status_code=status
        )
    return render(
        request, "error.html", status_code=status, status=status, message=message, details=details or []
    )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    from learnloop.services import tutoring

    tutoring.start_warm_up(app.state.ctx)  # models load in the background; /healthz waits for them
    yield


def create_app(ctx: AppContext | None = None) -> FastAPI:
    ctx = ctx or AppContext()
    app = FastAPI(
        title="Learnloop API",
        version="0.1.0",
        description="Adaptive, measured learning toward AI-era roles. Authenticate with the token "
        "from /api/v1/auth/login as `Authorization: Bearer <token>`.",
        docs_url="/api/docs",
        openapi_url="/api/v1/openapi.json",
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.ctx = ctx

    @app.middleware("http")
    async def request_setup(request: Request, call_next):  # type: ignore[no-untyped-def]
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return _error(request, 413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and content_type.startswith("multipart/"):
            return _error(request, 415, "unsupported_media_type", "file uploads are not accepted here")
        locale = request.cookies.get(web_routes.LOCALE_COOKIE) or i18n.negotiate(
            request.headers.get("accept-language")
        )
        i18n.set_locale(locale)
        return await call_next(request)

    @app.exception_handler(LearnloopError)
    async def learnloop_error(request: Request, exc: LearnloopError) -> Response:
        optional_user(request)
        return _error(request, exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(web_routes._LoginRequired)
    async def login_required(request: Request, exc: Exception) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        details = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _error(request, 422, "invalid_input", "the request is not valid", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {404: "not found", 405: "method not allowed"}
        return _error(request, exc.status_code, "http_error", messages.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return _error(request, 500, "internal_error", "something went wrong on our side; nothing was saved")

    app.include_router(api_router)
    app.include_router(web_routes.router)
    app.include_router(api_reports_router)
    app.include_router(web_reports.router)
    from learnloop.api import routes_assessment as api_assessment
    from learnloop.web import routes_assessment as web_assessment

    app.include_router(api_assessment.router)
    app.include_router(web_assessment.router)
    from learnloop.api import routes_guidance as api_guidance
    from learnloop.web import routes_guidance as web_guidance

    app.include_router(api_guidance.router)
    app.include_router(web_guidance.router)
    from learnloop.api import routes_llm as api_llm
    from learnloop.web import routes_llm as web_llm

    app.include_router(api_llm.router)
    app.include_router(web_llm.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")
    return app

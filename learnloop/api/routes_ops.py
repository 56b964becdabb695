"""Operations: readiness (/healthz), Prometheus metrics (/metrics) and the API docs page.

The docs page loads Swagger UI from this server (the swagger-ui-bundle-v2 package, mounted at
``/api/docs/assets``) and starts it from ``/static/swagger-init.js``, so it works offline and
under the site's Content-Security-Policy, which allows no inline script.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import escape

from learnloop import metrics, readiness
from learnloop.deps import get_ctx
from learnloop.errors import Unauthorized
from learnloop.i18n import _
from learnloop.services import auth, health
from learnloop.services.context import AppContext

router = APIRouter()
DOCS_ASSETS = "/api/docs/assets"


@router.get(
    "/healthz",
    tags=["operations"],
    responses={503: {"description": "the database is unreachable, or models are still loading"}},
)
def healthz(ctx: AppContext = Depends(get_ctx)) -> Response:
    """Readiness: 200 when the database answers and the models have loaded, else 503 (load
    balancers stop sending traffic; "starting" while models load in the background)."""
    problem = health.database_problem(ctx)
    if problem is not None:
        return JSONResponse({"status": "unavailable", "database": problem}, status_code=503)
    warming = readiness.warming()
    if warming:  # models still loading in the background (learnloop/readiness.py)
        return JSONResponse({"status": "starting", "database": "ok", "warming": warming}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", "degraded": sorted(readiness.failed())})


@router.get("/metrics", include_in_schema=False)
def metrics_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    """Prometheus text format; with ``LEARNLOOP_METRICS_TOKEN`` set, only for that bearer token."""
    expected = ctx.settings.metrics_token.get_secret_value()
    if expected:
        header = request.headers.get("authorization", "")
        supplied = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not auth.same_secret(expected, supplied):
            raise Unauthorized(_("The metrics need the metrics token (Authorization: Bearer)."))
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


@router.get("/api/docs", include_in_schema=False)
def docs(request: Request) -> HTMLResponse:
    openapi_url = escape(request.app.openapi_url or "")
    title = escape(request.app.title)
    return HTMLResponse(
        f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="stylesheet" href="{DOCS_ASSETS}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{DOCS_ASSETS}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
  <script src="{DOCS_ASSETS}/swagger-ui-bundle.js"></script>
  <script src="/static/swagger-init.js"></script>
</body>
</html>
"""
    )

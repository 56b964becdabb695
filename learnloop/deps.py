"""Request-level plumbing shared by the API and the web pages: context, current user, CSRF,
file downloads."""

from __future__ import annotations

from typing import Protocol

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from learnloop.errors import Forbidden, Unauthorized
from learnloop.i18n import _
from learnloop.services import auth
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext

SESSION_COOKIE = "learnloop_session"
#: the CSRF token of forms shown before login (double-submit: cookie and form field must agree)
PRE_CSRF_COOKIE = "learnloop_pre_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


def session_token(request: Request) -> tuple[str | None, bool]:
    """The login token and whether it came from a bearer header (no CSRF needed then)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), True
    return request.cookies.get(SESSION_COOKIE), False


def optional_user(request: Request) -> CurrentUser | None:
    if hasattr(request.state, "user"):
        return request.state.user
    token, _ = session_token(request)
    user = auth.resolve(get_ctx(request), token)
    request.state.user = user
    return user


def require_user(request: Request) -> CurrentUser:
    user = optional_user(request)
    if user is None:
        raise Unauthorized(_("Log in first (session cookie or Authorization: Bearer token)."))
    return user


def api_user(request: Request) -> CurrentUser:
    """The caller of an API route (CSRF is checked for every route by :func:`csrf_protect`)."""
    return require_user(request)


def client_address(request: Request) -> str | None:
    """The client's network address (the proxy's unless the server trusts its forwarded headers)."""
    return request.client.host if request.client else None


async def _supplied_csrf(request: Request) -> str | None:
    supplied = request.headers.get("x-csrf-token")
    if supplied:
        return supplied
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        value = (await request.form()).get("csrf_token")
        return value if isinstance(value, str) else None
    return None


#: posts a learning platform makes to the LTI tool (web/routes_lti.py): their proof is the
#: single-use state and the platform-signed id_token, not a CSRF token
PLATFORM_POSTS = frozenset({"/lti/login", "/lti/launch"})


async def csrf_protect(request: Request) -> None:
    """The app-wide CSRF check, a dependency of every route (see ``create_app``).

    A state-changing request (any method but GET, HEAD, OPTIONS) passes when it carries a bearer
    token (no ambient authority), or the CSRF token of the login its cookie belongs to (header
    ``X-CSRF-Token`` or form field ``csrf_token``). Without a login, a web form must echo the
    pre-login cookie's token; an API call without a login has no authority to abuse (API logins
    return their token in the body, never as a cookie) and passes.
    """
    if request.method in SAFE_METHODS or request.url.path in PLATFORM_POSTS:
        return
    _token, bearer = session_token(request)
    if bearer:
        return
    user = await run_in_threadpool(optional_user, request)
    if user is None and request.url.path.startswith("/api/"):
        return
    supplied = await _supplied_csrf(request)
    if user is not None:
        auth.check_csrf(user, supplied)
        return
    cookie = request.cookies.get(PRE_CSRF_COOKIE, "")
    if not auth.same_secret(cookie, supplied):
        raise Forbidden(_("The form has expired. Please reload the page and try again."))


class DownloadFile(Protocol):
    body: bytes
    media_type: str
    filename: str


def download(file: DownloadFile) -> Response:
    """A file for the browser to save, never kept in a cache (personal data)."""
    return Response(
        file.body,
        media_type=file.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{file.filename}"',
            "Cache-Control": "no-store",
        },
    )

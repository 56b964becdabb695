"""Request-level plumbing shared by the API and the web pages: context, current user, CSRF."""

from __future__ import annotations

from fastapi import Request

from learnloop.errors import Unauthorized
from learnloop.i18n import _
from learnloop.services import auth
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext

SESSION_COOKIE = "learnloop_session"


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
    """The caller of an API route; cookie-authenticated writes must carry X-CSRF-Token."""
    user = require_user(request)
    _, bearer = session_token(request)
    if request.method not in ("GET", "HEAD", "OPTIONS") and not bearer:
        auth.check_csrf(user, request.headers.get("x-csrf-token"))
    return user

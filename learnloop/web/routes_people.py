"""Pages of people admin (``/admin/people``) and of a person's own settings (``/settings``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from learnloop.deps import get_ctx
from learnloop.errors import InvalidInput, LearnloopError, Unauthorized
from learnloop.i18n import _
from learnloop.services import auth
from learnloop.services.auth import ROLES
from learnloop.services.context import AppContext
from learnloop.services.people import consent, csv_import, invitations, mail, oidc, provisioning, scim, teams
from learnloop.web.render import local_path, render
from learnloop.web.routes import _anonymous_form, _login_response, page_user

router = APIRouter(include_in_schema=False)
#: binds a single sign-on to the browser that started it (no login CSRF)
SSO_STATE_COOKIE = "learnloop_sso_state"
STATUSES = ("active", "deactivated", "all")


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _back(request: Request) -> RedirectResponse:
    """Back to the people page the form was on (its search kept)."""
    return _redirect(local_path(request.headers.get("referer"), "/admin/people", host=request.url.netloc))


def _optional_id(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 12:
        raise InvalidInput(_("Choose an entry from the list."))
    return int(value)


@router.get("/admin/people")
def people_page(
    request: Request,
    q: str = Query("", max_length=200),
    team_id: str = Query("", max_length=12),
    role: str = Query("", max_length=20),
    status: str = Query("active", max_length=20),
    offset: int = Query(0, ge=0, le=10_000_000),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    return _people(request, ctx, q=q, team_id=team_id, role=role, status=status, offset=offset)


def _people(
    request: Request,
    ctx: AppContext,
    *,
    q: str = "",
    team_id: str = "",
    role: str = "",
    status: str = "active",
    offset: int = 0,
    status_code: int = 200,
    **extra: object,
) -> Response:
    user = page_user(request)
    if status not in STATUSES:
        raise InvalidInput(_("The status must be active, deactivated or all."))
    page = provisioning.search_members(
        ctx,
        user,
        q=q,
        team_id=_optional_id(team_id),
        role=role or None,
        status=status,  # type: ignore[arg-type]
        offset=offset,
    )
    filters = {"q": q, "team_id": team_id, "role": role, "status": status}
    more = urlencode({**filters, "offset": offset + page.limit}) if offset + page.limit < page.total else ""
    return render(
        request,
        "people.html",
        status_code=status_code,
        page=page,
        teams=teams.list_teams(ctx, user),
        managers=provisioning.managers(ctx, user),
        roles=ROLES,
        statuses=STATUSES,
        filters=filters,
        more=more,
        **extra,
    )


@router.post("/admin/people/{member_id}/team")
def member_team(
    member_id: int, request: Request, team_id: str = Form(""), ctx: AppContext = Depends(get_ctx)
) -> Response:
    provisioning.set_team(ctx, page_user(request), member_id, _optional_id(team_id))
    return _back(request)


@router.post("/admin/people/{member_id}/manager")
def member_manager(
    member_id: int, request: Request, manager_id: str = Form(""), ctx: AppContext = Depends(get_ctx)
) -> Response:
    provisioning.set_manager(ctx, page_user(request), member_id, _optional_id(manager_id))
    return _back(request)


@router.post("/admin/people/{member_id}/deactivate")
def member_deactivate(member_id: int, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    provisioning.deactivate(ctx, page_user(request), member_id)
    return _back(request)


@router.post("/admin/people/{member_id}/reactivate")
def member_reactivate(member_id: int, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    provisioning.reactivate(ctx, page_user(request), member_id)
    return _back(request)


@router.post("/admin/people/import")
def people_import(
    request: Request,
    csv_text: str = Form("", max_length=250_000),
    action: str = Form("check"),
    invite: str = Form(""),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    """Check (dry run) or import pasted CSV; any problem imports nothing and lists them all."""
    user = page_user(request)
    try:
        report = csv_import.import_csv(ctx, user, csv_text, dry_run=action != "import", invite=invite == "on")
    except LearnloopError as exc:
        return _people(
            request,
            ctx,
            status_code=exc.status,
            import_error=exc.message,
            import_problems=exc.details,
            csv_text=csv_text,
        )
    return _people(request, ctx, report=report, csv_text=csv_text if report.dry_run else "")


@router.post("/admin/teams")
def team_create(
    request: Request, name: str = Form("", max_length=400), ctx: AppContext = Depends(get_ctx)
) -> Response:
    teams.create_team(ctx, page_user(request), name)
    return _back(request)


@router.post("/admin/teams/{team_id}/rename")
def team_rename(
    team_id: int, request: Request, name: str = Form("", max_length=400), ctx: AppContext = Depends(get_ctx)
) -> Response:
    teams.rename_team(ctx, page_user(request), team_id, name)
    return _back(request)


@router.post("/admin/teams/{team_id}/delete")
def team_delete(team_id: int, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    teams.delete_team(ctx, page_user(request), team_id)
    return _back(request)


@router.post("/admin/teams/{team_id}/admins")
def team_admin_grant(
    team_id: int,
    request: Request,
    member_email: str = Form("", max_length=254),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    found = provisioning.search_members(ctx, user, q=member_email.strip(), status="active", limit=2)
    exact = [m for m in found.members if m.email == member_email.strip().lower()]
    if not member_email.strip() or not exact:
        raise InvalidInput(_("No active member with this e-mail address."))
    teams.grant_team_admin(ctx, user, team_id, exact[0].id)
    return _back(request)


@router.post("/admin/teams/{team_id}/admins/{member_id}/remove")
def team_admin_revoke(
    team_id: int, member_id: int, request: Request, ctx: AppContext = Depends(get_ctx)
) -> Response:
    teams.revoke_team_admin(ctx, page_user(request), team_id, member_id)
    return _back(request)


@router.get("/settings")
def settings_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    return render(
        request,
        "settings.html",
        consent=consent.get_consent(ctx, user),
        reminders=mail.get_reminders(ctx, user),
    )


@router.post("/settings/consent")
def settings_consent(request: Request, share: str = Form(""), ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    if share not in ("yes", "no"):
        raise InvalidInput(_("Choose whether to share with your manager."))
    consent.set_consent(ctx, user, share == "yes")
    return _redirect("/settings")


# --- single sign-on ----------------------------------------------------------------------


def _sso_redirect(
    request: Request, ctx: AppContext, org_slug: str, next_path: str, *, from_form: bool = False
) -> Response:
    url = oidc.start_login(
        ctx,
        org_slug=org_slug,
        redirect_uri=str(request.url_for("sso_callback")),
        next_path=local_path(next_path, "/"),
    )
    state = parse_qs(urlsplit(url).query).get("state", [""])[0]
    # after a form, a page that moves on by itself: the CSP's form-action ('self') would stop a
    # form's redirect to the identity provider
    response = render(request, "sso_continue.html", target=url) if from_form else _redirect(url)
    response.set_cookie(
        SSO_STATE_COOKIE,
        state,
        max_age=int(oidc.LOGIN_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure,
    )
    return response


@router.post("/sso/start")
def sso_start(
    request: Request,
    email: str = Form("", max_length=254),
    next: str = Form("", max_length=2000),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    """Single sign-on for the organisation that takes this e-mail's domain."""
    return _sso_redirect(request, ctx, oidc.org_for_email(ctx, email), next, from_form=True)


@router.get("/sso/{org_slug}/login")
def sso_login(
    org_slug: str,
    request: Request,
    next: str = Query("", max_length=2000),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    return _sso_redirect(request, ctx, org_slug[:80], next)


@router.get("/sso/callback", name="sso_callback")
def sso_callback(
    request: Request,
    state: str = Query("", max_length=200),
    code: str = Query("", max_length=2000),
    error: str = Query("", max_length=200),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    if not auth.same_secret(request.cookies.get(SSO_STATE_COOKIE, ""), state):
        raise Unauthorized(_("This sign-in did not start in this browser; start again."))
    result, next_path = oidc.finish_login(
        ctx, state=state, code=code, error=error, redirect_uri=str(request.url_for("sso_callback"))
    )
    response = _login_response(ctx, result, local_path(next_path, "/"))
    response.delete_cookie(SSO_STATE_COOKIE)
    return response


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/admin/identity")
def identity_page(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    user = page_user(request)
    return render(
        request,
        "identity.html",
        settings=oidc.get_settings(ctx, user),
        form=None,
        request_base=_base(request),
    )


@router.post("/admin/identity")
def identity_save(
    request: Request,
    issuer: str = Form("", max_length=600),
    client_id: str = Form("", max_length=400),
    client_secret: str = Form("", max_length=600),
    domains: str = Form("", max_length=5000),
    sso_only: str = Form(""),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    try:
        oidc.configure(
            ctx,
            user,
            issuer=issuer,
            client_id=client_id,
            client_secret=client_secret or None,
            domains=domains,
            sso_only=sso_only == "on",
        )
    except LearnloopError as exc:
        form = {"issuer": issuer, "client_id": client_id, "domains": domains, "sso_only": sso_only == "on"}
        return render(
            request,
            "identity.html",
            status_code=exc.status,
            settings=oidc.get_settings(ctx, user),
            form=form,
            error=exc.message,
            request_base=_base(request),
        )
    return _redirect("/admin/identity")


@router.post("/admin/identity/scim-token")
def scim_token_new(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    """A new SCIM token, shown on this page once."""
    user = page_user(request)
    token = scim.generate_token(ctx, user)
    return render(
        request,
        "identity.html",
        settings=oidc.get_settings(ctx, user),
        form=None,
        scim_token=token,
        request_base=_base(request),
    )


@router.post("/admin/identity/scim-token/revoke")
def scim_token_revoke(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    scim.revoke_token(ctx, page_user(request))
    return _redirect("/admin/identity")


@router.post("/settings/reminders")
def settings_reminders(
    request: Request, reminders: str = Form(""), ctx: AppContext = Depends(get_ctx)
) -> Response:
    user = page_user(request)
    if reminders not in ("on", "off"):
        raise InvalidInput(_("Choose whether to get reminders."))
    mail.set_reminders(ctx, user, reminders == "on")
    return _redirect("/settings")


@router.post("/admin/people/invite")
def people_invite(
    request: Request,
    email: str = Form("", max_length=254),
    name: str = Form("", max_length=200),
    role: str = Form("learner", max_length=20),
    team_id: str = Form("", max_length=12),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    user = page_user(request)
    try:
        invitations.invite(ctx, user, email=email, name=name, role=role, team_id=_optional_id(team_id))
    except LearnloopError as exc:
        return _people(request, ctx, status_code=exc.status, invite_error=exc.message)
    return _people(request, ctx, invited=email.strip().lower())


@router.get("/invite/{token}")
def invite_page(token: str, request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    return _anonymous_form(
        request, "invite.html", invitation=invitations.view(ctx, token[:100]), token=token[:100]
    )


@router.post("/invite/{token}")
def invite_accept(
    token: str, request: Request, password: str = Form("", max_length=200), ctx: AppContext = Depends(get_ctx)
) -> Response:
    try:
        result = invitations.accept(ctx, token[:100], password)
    except LearnloopError as exc:
        if exc.status == 404:
            raise
        return _anonymous_form(
            request,
            "invite.html",
            error=exc,
            invitation=invitations.view(ctx, token[:100]),
            token=token[:100],
        )
    return _login_response(ctx, result, "/roles")

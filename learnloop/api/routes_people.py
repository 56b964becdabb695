"""People admin and consent over JSON: ``/api/v1/people``, ``/api/v1/teams``, ``/api/v1/me/consent``.

Handlers only translate HTTP to :mod:`learnloop.services.people` calls; role checks, scoping to
the caller's organisation (and to a team admin's teams) and transactions live there.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from learnloop.deps import api_user, get_ctx
from learnloop.errors import InvalidInput
from learnloop.i18n import _
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.people import consent, csv_import, invitations, mail, oidc, provisioning, scim, teams

router = APIRouter(prefix="/api/v1", tags=["people"])


class TeamIn(BaseModel):
    name: str = Field(max_length=200)


class MemberChange(BaseModel):
    """Any of: the team (by id, ``null`` for none), the manager (by id, ``null`` for none),
    whether the member is active. Fields left out are left as they are."""

    team_id: int | None = None
    manager_id: int | None = None
    active: bool | None = None


class ConsentIn(BaseModel):
    share_with_manager: bool


@router.get("/people", response_model=provisioning.MemberPage)
def list_people(
    q: str = Query("", max_length=200, description="part of a name or e-mail address"),
    team_id: int | None = Query(None),
    role: str | None = Query(None, max_length=20),
    status: Literal["active", "deactivated", "all"] = Query("active"),
    manager_id: int | None = Query(None),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> provisioning.MemberPage:
    """Search and filter members (admins: the organisation; team admins: their teams)."""
    return provisioning.search_members(
        ctx,
        user,
        q=q,
        team_id=team_id,
        role=role,
        status=status,
        manager_id=manager_id,
        limit=limit,
        offset=offset,
    )


@router.patch("/people/{member_id}", response_model=provisioning.MemberRow)
def change_member(
    member_id: int,
    body: MemberChange,
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> provisioning.MemberRow:
    """Change a member's team, manager or active state. Deactivating ends their logins and
    API tokens at once."""
    given = body.model_fields_set
    if not given:
        raise InvalidInput(_("Give a team_id, a manager_id or active."))
    row = None
    if "team_id" in given:
        row = provisioning.set_team(ctx, user, member_id, body.team_id)
    if "manager_id" in given:
        row = provisioning.set_manager(ctx, user, member_id, body.manager_id)
    if "active" in given and body.active is not None:
        row = (provisioning.reactivate if body.active else provisioning.deactivate)(ctx, user, member_id)
    assert row is not None
    return row


@router.post("/people/import", response_model=csv_import.ImportReport)
async def import_people(
    request: Request,
    dry_run: bool = Query(True, description="check only (the default); false imports a clean file"),
    invite: bool = Query(False, description="e-mail each new person an invitation to set a password"),
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> csv_import.ImportReport:
    """Bulk import from a CSV body (``text/csv``, UTF-8): columns ``email,name`` and optionally
    ``role,team,manager_email``. A dry run lists every problem by line; an import with any
    problem imports nothing (422 with every problem in ``details``)."""
    data = await request.body()
    return await run_in_threadpool(csv_import.import_csv, ctx, user, data, dry_run=dry_run, invite=invite)


@router.get("/teams", response_model=list[teams.TeamRow])
def list_teams(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> list[teams.TeamRow]:
    return teams.list_teams(ctx, user)


@router.post("/teams", response_model=teams.TeamRow, status_code=201)
def create_team(
    body: TeamIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> teams.TeamRow:
    return teams.create_team(ctx, user, body.name)


@router.patch("/teams/{team_id}", response_model=teams.TeamRow)
def rename_team(
    team_id: int, body: TeamIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> teams.TeamRow:
    return teams.rename_team(ctx, user, team_id, body.name)


@router.delete("/teams/{team_id}", status_code=204)
def delete_team(
    team_id: int, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> None:
    """Delete a team; its members stay, without a team."""
    teams.delete_team(ctx, user, team_id)


@router.put("/teams/{team_id}/admins/{member_id}", response_model=teams.TeamRow)
def grant_team_admin(
    team_id: int, member_id: int, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> teams.TeamRow:
    """Make a member admin of this team (they manage its members only)."""
    return teams.grant_team_admin(ctx, user, team_id, member_id)


@router.delete("/teams/{team_id}/admins/{member_id}", response_model=teams.TeamRow)
def revoke_team_admin(
    team_id: int, member_id: int, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> teams.TeamRow:
    return teams.revoke_team_admin(ctx, user, team_id, member_id)


@router.get("/me/consent", response_model=consent.ConsentState)
def get_consent(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> consent.ConsentState:
    """Whether you share your individual figures with your manager, and when that changed."""
    return consent.get_consent(ctx, user)


@router.put("/me/consent", response_model=consent.ConsentState)
def set_consent(
    body: ConsentIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> consent.ConsentState:
    """Grant or withdraw sharing with your manager; it holds from the next request and is logged."""
    return consent.set_consent(ctx, user, body.share_with_manager)


class IdentityIn(BaseModel):
    """Single sign-on settings. ``client_secret`` left out (or null) keeps the stored one; it is
    never returned. An empty issuer turns single sign-on off."""

    oidc_issuer: str = Field(default="", max_length=500)
    oidc_client_id: str = Field(default="", max_length=300)
    client_secret: str | None = Field(default=None, max_length=500)
    oidc_domains: list[str] = Field(default_factory=list, max_length=50)
    sso_only: bool = False


@router.get("/org/identity", response_model=oidc.IdentitySettings)
def get_identity(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> oidc.IdentitySettings:
    """The organisation's single sign-on and SCIM settings (admins; the secret is never shown)."""
    return oidc.get_settings(ctx, user)


@router.put("/org/identity", response_model=oidc.IdentitySettings)
def set_identity(
    body: IdentityIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> oidc.IdentitySettings:
    return oidc.configure(
        ctx,
        user,
        issuer=body.oidc_issuer,
        client_id=body.oidc_client_id,
        client_secret=body.client_secret,
        domains=body.oidc_domains,
        sso_only=body.sso_only,
    )


class ScimTokenOut(BaseModel):
    token: str = Field(description="shown once: keep it in the identity provider's SCIM settings")


@router.post("/org/scim-token", response_model=ScimTokenOut, status_code=201)
def new_scim_token(ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)) -> ScimTokenOut:
    """A new SCIM bearer token for ``/scim/v2`` (admins); the previous one stops working."""
    return ScimTokenOut(token=scim.generate_token(ctx, user))


@router.delete("/org/scim-token", status_code=204)
def revoke_scim_token(ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)) -> None:
    """Turn SCIM provisioning off: the token stops working at once."""
    scim.revoke_token(ctx, user)


class InvitationIn(BaseModel):
    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    role: str = Field(default="learner", max_length=20)
    team_id: int | None = None


class RemindersIn(BaseModel):
    reminders: bool


@router.post("/people/invitations", response_model=invitations.InvitationOut, status_code=201)
def invite(
    body: InvitationIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> invitations.InvitationOut:
    """Invite a person by e-mail (admins): the member is created and gets a link to set a password.
    The e-mail goes through the outbox; an SMTP server that is down delays it, nothing else."""
    return invitations.invite(
        ctx, user, email=body.email, name=body.name, role=body.role, team_id=body.team_id
    )


@router.get("/me/reminders", response_model=mail.ReminderState)
def get_reminders(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> mail.ReminderState:
    return mail.get_reminders(ctx, user)


@router.put("/me/reminders", response_model=mail.ReminderState)
def set_reminders(
    body: RemindersIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> mail.ReminderState:
    """Turn your reminder e-mails (due reviews, inactivity) on or off."""
    return mail.set_reminders(ctx, user, body.reminders)

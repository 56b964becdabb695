"""Webhooks over JSON: ``/api/v1/webhooks`` (admins). Handlers only translate HTTP to
:mod:`learnloop.services.people.webhooks`; role checks, scoping and transactions live there."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from learnloop.deps import api_user, get_ctx
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.people import webhooks

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


class WebhookIn(BaseModel):
    url: str = Field(max_length=1000)
    events: list[str] = Field(max_length=len(webhooks.EVENTS))


class WebhookChange(BaseModel):
    active: bool


@router.get("/webhooks", response_model=list[webhooks.EndpointView])
def list_webhooks(
    ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> list[webhooks.EndpointView]:
    return webhooks.list_endpoints(ctx, user)


@router.post("/webhooks", response_model=webhooks.NewEndpoint, status_code=201)
def create_webhook(
    body: WebhookIn, ctx: AppContext = Depends(get_ctx), user: CurrentUser = Depends(api_user)
) -> webhooks.NewEndpoint:
    """Register an endpoint; the answer holds its signing secret, which is never shown again."""
    return webhooks.create_endpoint(ctx, user, body.url, body.events)


@router.patch("/webhooks/{endpoint_id}", response_model=webhooks.EndpointView)
def change_webhook(
    endpoint_id: int,
    body: WebhookChange,
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> webhooks.EndpointView:
    return webhooks.set_active(ctx, user, endpoint_id, body.active)


@router.get("/webhooks/deliveries", response_model=list[webhooks.DeliveryView])
def webhook_deliveries(
    endpoint_id: int | None = Query(None),
    limit: int = Query(50, ge=1, le=500),
    ctx: AppContext = Depends(get_ctx),
    user: CurrentUser = Depends(api_user),
) -> list[webhooks.DeliveryView]:
    """The delivery log, newest first: status, HTTP code, tries and the last error."""
    return webhooks.deliveries(ctx, user, endpoint_id, limit)

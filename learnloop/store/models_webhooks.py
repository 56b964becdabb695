"""Tables of the outgoing webhooks (``services/people/webhooks.py``); same ``Base``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from learnloop.store.models import Base, utcnow


class WebhookEndpoint(Base):
    """An organisation's receiver of events. ``secret`` signs each delivery (HMAC-SHA256): it is
    shown once when the endpoint is made, stored encrypted, never logged and never shown again."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    url: Mapped[str] = mapped_column(String(1000))
    #: the event types it receives
    events: Mapped[list[str]] = mapped_column(JSON)
    #: ``fernet:`` and the secret encrypted with a key from the settings (a plain ``whsec_`` value
    #: from before migration 0029 is encrypted on its next use)
    secret: Mapped[str] = mapped_column(String(400))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint, written in the same transaction as the event.

    ``delivery_id`` (a UUID, ``X-Learnloop-Delivery``) is the same on every try, so a receiver
    can drop a delivery it has already handled; ``event_key`` makes an event that happens once
    (a target met, a role ready) give one delivery per endpoint however often it is seen."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_key", name="uq_webhook_delivery_event"),
        Index("ix_webhook_deliveries_org", "org_id", "id"),
        Index("ix_webhook_deliveries_status", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(36), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event: Mapped[str] = mapped_column(String(40))
    event_key: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: pending | sent | failed
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: the receiver's last HTTP status (None: no answer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    #: the last failure, by kind and HTTP status only
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

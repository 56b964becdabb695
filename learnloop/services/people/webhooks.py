"""Outgoing webhooks: HMAC-signed JSON events, delivered by a job with retries, and a log.

An admin registers endpoints (an http(s) URL and the events it receives); each gets a secret,
shown once, that signs every delivery. An event is written to ``webhook_deliveries`` in the
same transaction as what it reports (one row per subscribed endpoint), and a
``webhook.deliver`` job is enqueued with it: the job POSTs the JSON body with

- ``X-Learnloop-Event``: the event type;
- ``X-Learnloop-Delivery``: the delivery's id, the same on every try (a receiver drops one it
  has already handled);
- ``X-Learnloop-Timestamp``: when this try was sent (also ``timestamp`` in the body, so it is
  signed);
- ``X-Learnloop-Signature``: ``sha256=`` and the hex HMAC-SHA256 of the raw body with the
  endpoint's secret.

A 2xx answer is a delivery; anything else (an error status, no answer) is retried with the
queue's back-off, and the last try marks the delivery failed. Events raised where no context is
at hand (``emit`` without ``ctx``) wait for the ``webhook.sweep`` job, every five minutes.

Events: ``answer.recorded``, ``target.met`` (once per learner, role and skill),
``role.ready`` (once per learner and role), ``check.completed``, ``member.provisioned``.
The secret is stored encrypted (Fernet, keyed from ``webhooks_secret_key`` or else
``secret_key``), never logged, never returned after creation, and errors keep only a kind and
a status code.

Server-side request forgery: a target must resolve to public addresses only, not loopback,
private, link-local (the cloud metadata service at 169.254.169.254), shared, reserved or
multicast ones. This is checked when the endpoint is registered and again at every delivery
(a name may resolve elsewhere later: DNS rebinding), and the delivery connects to the address
it checked, with the name kept for the ``Host`` header and TLS. An operator whose receivers are
inside their own network sets ``LEARNLOOP_WEBHOOKS_ALLOW_PRIVATE=true``. Redirects are not
followed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from learnloop.content.models import LEVEL_MASTERY, Item
from learnloop.errors import Forbidden, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.services.auth import CurrentUser
from learnloop.services.context import ActivePack, AppContext
from learnloop.store.models import Assessment, Response, User, as_utc, utcnow
from learnloop.store.models_webhooks import WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

EVENTS = ("answer.recorded", "target.met", "role.ready", "check.completed", "member.provisioned")
#: endpoints per organisation
MAX_ENDPOINTS = 20
TIMEOUT_S = 10.0


class EndpointView(BaseModel):
    id: int
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class NewEndpoint(EndpointView):
    """The endpoint just made, with its secret: the only time the secret is shown."""

    secret: str


class DeliveryView(BaseModel):
    id: int
    delivery_id: str
    endpoint_id: int
    url: str
    event: str
    status: str
    attempts: int
    status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def _require_admin(user: CurrentUser) -> None:
    if user.role != "admin":
        raise Forbidden(_("Only admins manage webhooks."))


def _view(row: WebhookEndpoint) -> EndpointView:
    return EndpointView(
        id=row.id, url=row.url, events=list(row.events), active=row.active, created_at=as_utc(row.created_at)
    )


def check_url(url: str) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
        parts.port  # noqa: B018  # a port that is not a number raises here
    except ValueError:
        scheme, host = "", None
    if scheme not in ("http", "https") or not host or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput(_("A webhook URL must start with http:// or https:// and name a host."))
    if len(url) > 1000:
        raise InvalidInput(_("A webhook URL may be at most 1000 characters long."))
    return url


# --- secrets at rest ---------------------------------------------------------------------------

#: the prefix of an encrypted secret (a stored value without it is a plain one from before 0029)
SEALED = "fernet:"


def _fernet(ctx: AppContext) -> Fernet:
    key = ctx.settings.webhooks_secret_key.get_secret_value() or ctx.settings.secret_key
    digest = hashlib.sha256(b"learnloop webhook secrets\x00" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(ctx: AppContext, secret: str) -> str:
    """The signing secret as stored: encrypted and authenticated."""
    return SEALED + _fernet(ctx).encrypt(secret.encode()).decode("ascii")


def unseal(ctx: AppContext, stored: str) -> str:
    """The signing secret of a stored value (raises ``InvalidToken`` under another key)."""
    if not stored.startswith(SEALED):
        return stored
    return _fernet(ctx).decrypt(stored.removeprefix(SEALED).encode("ascii")).decode()


def seal_plain_secrets(ctx: AppContext) -> int:
    """Encrypt the secrets stored in the clear by a version before migration 0029."""
    with ctx.session() as session:
        rows = session.scalars(
            select(WebhookEndpoint).where(~WebhookEndpoint.secret.startswith(SEALED))
        ).all()
        for row in rows:
            row.secret = seal(ctx, row.secret)
        return len(rows)


# --- where a webhook may go (SSRF) --------------------------------------------------------------


class BlockedTarget(Exception):
    """The target resolves to an address webhooks may not reach."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is link-local
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _addresses(parts: SplitResult) -> list[str]:
    """Every address the URL's host resolves to (raises ``OSError`` when it does not)."""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _non_public(parts: SplitResult) -> list[str]:
    return [a for a in _addresses(parts) if not _public(a)]


def check_target(ctx: AppContext, url: str) -> None:
    """Refuse a URL whose host is, or now resolves to, a non-public address (unless the operator
    allows private targets). A name that does not resolve yet is checked at each delivery."""
    if ctx.settings.webhooks_allow_private:
        return
    try:
        blocked = _non_public(urlsplit(url))
    except (OSError, ValueError):  # does not resolve (yet), or no name DNS could look up
        return
    if blocked:
        raise InvalidInput(
            _(
                "A webhook may not go to a loopback, private, link-local or other non-public address "
                "({address}). An operator can allow it with LEARNLOOP_WEBHOOKS_ALLOW_PRIVATE=true."
            ).format(address=blocked[0])
        )


def _pinned(ctx: AppContext, url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL to connect to, extra headers and request extensions: on the address just checked
    (so the name cannot resolve elsewhere between the check and the connection), the name kept
    in ``Host`` and for TLS (SNI and the certificate's check). Raises :class:`BlockedTarget`."""
    if ctx.settings.webhooks_allow_private:
        return url, {}, {}
    parts = urlsplit(url)
    addresses = _addresses(parts)
    blocked = [a for a in addresses if not _public(a)]
    if blocked:
        raise BlockedTarget(blocked[0])
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return url, {}, {}  # an address already: nothing to resolve
    except ValueError:
        pass
    address = addresses[0]
    shown = f"[{address}]" if ":" in address else address
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + shown + (f":{parts.port}" if parts.port else "")
    host_header = parts.netloc.rpartition("@")[2]
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": host_header}, extensions


def check_events(events: list[str]) -> list[str]:
    chosen = sorted(set(events))
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown or not chosen:
        raise InvalidInput(
            _("Choose at least one event of: {events}.").format(events=", ".join(EVENTS))
            + (" " + _("Unknown: {names}.").format(names=", ".join(unknown)) if unknown else "")
        )
    return chosen


def create_endpoint(ctx: AppContext, admin: CurrentUser, url: str, events: list[str]) -> NewEndpoint:
    _require_admin(admin)
    url, chosen = check_url(url), check_events(events)
    check_target(ctx, url)
    secret = "whsec_" + secrets.token_urlsafe(32)
    with ctx.session() as session:
        count = len(
            session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.org_id == admin.org_id)).all()
        )
        if count >= MAX_ENDPOINTS:
            raise InvalidInput(_("An organisation may have at most {n} webhooks.").format(n=MAX_ENDPOINTS))
        row = WebhookEndpoint(
            org_id=admin.org_id,
            url=url,
            events=chosen,
            secret=seal(ctx, secret),
            active=True,
            created_by=admin.id,
        )
        session.add(row)
        session.flush()
        return NewEndpoint(**_view(row).model_dump(), secret=secret)


def list_endpoints(ctx: AppContext, admin: CurrentUser) -> list[EndpointView]:
    _require_admin(admin)
    with ctx.session() as session:
        rows = session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.org_id == admin.org_id).order_by(WebhookEndpoint.id)
        ).all()
        return [_view(r) for r in rows]


def _endpoint(session: Session, org_id: int, endpoint_id: int) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None or row.org_id != org_id:
        raise NotFound(_("No such webhook."))
    return row


def set_active(ctx: AppContext, admin: CurrentUser, endpoint_id: int, active: bool) -> EndpointView:
    """Pause (no new deliveries) or resume an endpoint; its log is kept."""
    _require_admin(admin)
    with ctx.session() as session:
        row = _endpoint(session, admin.org_id, endpoint_id)
        row.active = active
        return _view(row)


def deliveries(
    ctx: AppContext, admin: CurrentUser, endpoint_id: int | None = None, limit: int = 50
) -> list[DeliveryView]:
    """The delivery log of the caller's organisation, newest first."""
    _require_admin(admin)
    with ctx.session() as session:
        query = (
            select(WebhookDelivery, WebhookEndpoint.url)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.org_id == admin.org_id)
        )
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        rows = session.execute(query.order_by(WebhookDelivery.id.desc()).limit(max(1, min(limit, 500)))).all()
        return [
            DeliveryView(
                id=d.id,
                delivery_id=d.delivery_id,
                endpoint_id=d.endpoint_id,
                url=url,
                event=d.event,
                status=d.status,
                attempts=d.attempts,
                status_code=d.status_code,
                last_error=d.last_error,
                created_at=as_utc(d.created_at),
                delivered_at=as_utc(d.delivered_at) if d.delivered_at else None,
            )
            for d, url in rows
        ]


# --- emitting events (in the caller's transaction) -------------------------------------------


def emit(
    session: Session,
    org_id: int,
    event: str,
    data: dict[str, Any],
    *,
    key: str | None = None,
    ctx: AppContext | None = None,
) -> int:
    """Record ``event`` for every active endpoint of ``org_id`` that receives it; returns how
    many deliveries were made. ``key``: an event that happens once (a second emit with the same
    key is ignored). With ``ctx``, the deliveries' jobs are enqueued in the same transaction;
    without, the next ``webhook.sweep`` enqueues them."""
    assert event in EVENTS
    endpoints = [
        e
        for e in session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id, WebhookEndpoint.active.is_(True))
        )
        if event in e.events
    ]
    if not endpoints:
        return 0
    event_key = key or f"{event}:{uuid.uuid4()}"
    if key is not None:
        done = set(
            session.scalars(
                select(WebhookDelivery.endpoint_id).where(
                    WebhookDelivery.event_key == event_key,
                    WebhookDelivery.endpoint_id.in_([e.id for e in endpoints]),
                )
            )
        )
        endpoints = [e for e in endpoints if e.id not in done]
    made = [
        WebhookDelivery(
            delivery_id=str(uuid.uuid4()),
            org_id=org_id,
            endpoint_id=e.id,
            event=event,
            event_key=event_key,
            data=data,
            status="pending",
            attempts=0,
        )
        for e in endpoints
    ]
    session.add_all(made)
    session.flush()
    if ctx is not None:
        for d in made:
            _enqueue(ctx, session, d)
    return len(made)


def _enqueue(ctx: AppContext, session: Session, d: WebhookDelivery) -> None:
    from learnloop.jobs import enqueue

    enqueue(
        ctx,
        "webhook.deliver",
        {"delivery_id": d.id},
        dedupe_key=f"webhook:{d.id}",
        org_id=d.org_id,
        session=session,
    )


def _subscribed(session: Session, org_id: int) -> set[str]:
    """The events that at least one active endpoint of ``org_id`` receives."""
    return {
        str(e)
        for events in session.scalars(
            select(WebhookEndpoint.events).where(
                WebhookEndpoint.org_id == org_id, WebhookEndpoint.active.is_(True)
            )
        )
        for e in events
    }


def after_answer(
    session: Session,
    ctx: AppContext,
    active: ActivePack,
    org_id: int,
    user_id: int,
    item: Item,
    response: Response,
    *,
    check_id: int | None = None,
) -> None:
    """An answer was stored: ``answer.recorded``, and ``target.met`` / ``role.ready`` for what
    it completed (each once per learner)."""
    subscribed = _subscribed(session, org_id)
    if not subscribed:
        return
    emit(
        session,
        org_id,
        "answer.recorded",
        {
            "learner_id": user_id,
            "answer_id": response.id,
            "item_id": item.id,
            "skills": list(item.skills),
            "correct": bool(response.correct),
            "score": response.score,
            "check_id": check_id,
            "at": as_utc(response.created_at).isoformat(),
        },
        ctx=ctx,
    )
    if subscribed & {"target.met", "role.ready"}:
        _targets_and_role(session, ctx, active, org_id, user_id, list(item.skills), response.created_at)


def _targets_and_role(
    session: Session,
    ctx: AppContext,
    active: ActivePack,
    org_id: int,
    user_id: int,
    skill_ids: list[str],
    at: datetime,
) -> None:
    from learnloop.services.badges import role_ready
    from learnloop.services.enrolment import current_role
    from learnloop.services.mastery import targets_met

    role_id = current_role(session, user_id)
    role = active.roles.get(role_id) if role_id else None
    if role is None:
        return
    wanted = {s: LEVEL_MASTERY[role.targets[s]] for s in skill_ids if s in role.targets}
    met = targets_met(session, ctx.settings, active.items_by_skill, user_id, wanted, at)
    if met:
        for skill_id, p_known in met.items():
            emit(
                session,
                org_id,
                "target.met",
                {
                    "learner_id": user_id,
                    "role_id": role.id,
                    "skill_id": skill_id,
                    "mastery": round(p_known, 4),
                    "at": as_utc(at).isoformat(),
                },
                key=f"target.met:{user_id}:{role.id}:{skill_id}",
                ctx=ctx,
            )
        if role_ready(session, ctx, active, user_id, role):
            emit(
                session,
                org_id,
                "role.ready",
                {"learner_id": user_id, "role_id": role.id, "at": as_utc(at).isoformat()},
                key=f"role.ready:{user_id}:{role.id}",
                ctx=ctx,
            )


def check_completed(session: Session, ctx: AppContext, row: Assessment) -> None:
    emit(
        session,
        row.org_id,
        "check.completed",
        {
            "learner_id": row.user_id,
            "check_id": row.id,
            "role_id": row.role_id,
            "score": row.score,
            "items": len(row.administered or []),
        },
        key=f"check.completed:{row.id}",
        ctx=ctx,
    )


def member_provisioned(session: Session, user: User, ctx: AppContext | None = None) -> None:
    session.flush()
    emit(
        session,
        user.org_id,
        "member.provisioned",
        {
            "member_id": user.id,
            "email": user.email,
            "name": user.name,
            "role": user.role,
            "team_id": user.team_id,
            "external_id": user.external_id,
        },
        key=f"member.provisioned:{user.id}",
        ctx=ctx,
    )


# --- delivery (the webhook.deliver job) --------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class DeliveryFailed(RuntimeError):
    """The receiver did not take the delivery (the job tries again)."""


def deliver_one(ctx: AppContext, delivery_pk: int, *, final: bool = False) -> str:
    """POST one delivery: "sent", "skipped" (already sent, or its endpoint paused/removed), or
    raise :class:`DeliveryFailed` after recording the failure (``final``: marked failed)."""
    with ctx.session() as session:
        d = session.get(WebhookDelivery, delivery_pk)
        if d is None or d.status != "pending":
            return "skipped"
        endpoint = session.get(WebhookEndpoint, d.endpoint_id)
        if endpoint is None or not endpoint.active:
            d.status, d.last_error = "failed", "endpoint paused"
            return "skipped"
        try:
            secret = unseal(ctx, endpoint.secret)
        except InvalidToken:
            d.status, d.last_error = "failed", "signing secret unreadable (the encryption key changed)"
            log.error("webhook endpoint %s: its secret cannot be decrypted with this key", endpoint.id)
            return "failed"
        if not endpoint.secret.startswith(SEALED):  # stored in the clear before migration 0029
            endpoint.secret = seal(ctx, secret)
        url, event, delivery_id = endpoint.url, d.event, d.delivery_id
        sent_at = utcnow()
        body = json.dumps(
            {
                "id": delivery_id,
                "event": event,
                "organisation_id": d.org_id,
                "timestamp": int(sent_at.timestamp()),
                "data": d.data,
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Learnloop-Webhooks/1",
        "X-Learnloop-Event": event,
        "X-Learnloop-Delivery": delivery_id,
        "X-Learnloop-Timestamp": str(int(sent_at.timestamp())),
        "X-Learnloop-Signature": sign(secret, body),
    }
    code: int | None = None
    error: str | None = None
    blocked = False
    try:
        target, host, extensions = _pinned(ctx, url)
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
            request = client.build_request(
                "POST", target, content=body, headers={**headers, **host}, extensions=extensions
            )
            r = client.send(request)
        code = r.status_code
        if not 200 <= code < 300:
            error = f"HTTP {code}"
    except BlockedTarget:
        error, blocked = "blocked: the target resolves to a non-public address", True
    except (OSError, ValueError):  # the name does not resolve (now), or cannot be looked up
        error = "DNS lookup failed"
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    with ctx.session() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_pk)
            .values(
                attempts=WebhookDelivery.attempts + 1,
                status_code=code,
                last_error=error,
                status="sent" if error is None else ("failed" if final or blocked else "pending"),
                delivered_at=utcnow() if error is None else None,
            )
        )
    if blocked:  # not tried again: the address is refused, not away
        log.warning("webhook delivery %s refused: %s", delivery_id, error)
        return "blocked"
    if error is not None:
        log.info("webhook delivery %s to endpoint failed: %s", delivery_id, error)
        raise DeliveryFailed(error)
    return "sent"


def sweep(ctx: AppContext) -> int:
    """Enqueue the delivery job of each pending delivery that has none (events raised without a
    context); a job that exists already is left as it is. Also encrypts any secret still stored
    in the clear (from before migration 0029)."""
    seal_plain_secrets(ctx)
    with ctx.session() as session:
        rows = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.status == "pending").limit(500)
        ).all()
        for d in rows:
            _enqueue(ctx, session, d)
        return len(rows)

"""Tables of the standards integrations (``learnloop/interop/``, ``services/xapi_outbox.py``).

Kept apart from ``models.py`` so each integration's tables read together; same ``Base``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from learnloop.store.models import Base, utcnow


class XapiSettings(Base):
    """An organisation's learning record store. ``password`` is a secret: never logged, never
    shown back (pages and the API say only whether one is set)."""

    __tablename__ = "xapi_settings"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the LRS's xAPI base, e.g. https://lrs.example.org/xAPI/ (statements go to <base>statements)
    endpoint: Mapped[str] = mapped_column(String(500))
    username: Mapped[str] = mapped_column(String(200), default="")
    password: Mapped[str] = mapped_column(String(500), default="")
    #: account (homePage + the learner's opaque id) | mbox (e-mail, only when the org opts in)
    actor_mode: Mapped[str] = mapped_column(String(10), default="account")
    #: the accounts' homePage and the base of activity ids
    home_page: Mapped[str] = mapped_column(String(500))
    #: a random UUID chosen once: the namespace of statement ids and actor keys (never changed,
    #: or the same event would get a new id and learners new names)
    id_namespace: Mapped[str] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class XapiOutbox(Base):
    """A statement to deliver, written in the same transaction as the event behind it.

    One row per statement id (unique): delivery is a PUT with that id, so a row delivered twice
    still gives the LRS one statement. Rows are kept after delivery (``status`` = sent)."""

    __tablename__ = "xapi_outbox"
    __table_args__ = (Index("ix_xapi_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    statement_id: Mapped[str] = mapped_column(String(36), unique=True)
    #: answered | hint | lesson | target_met | check_completed
    event: Mapped[str] = mapped_column(String(20))
    statement: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: pending | sent
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: the last failure, reduced to its kind and HTTP status (never a secret)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LtiToolKey(Base):
    """The organisation's LTI tool key (RSA). ``private_pem`` is a secret: never logged or shown;
    the public half is served at the organisation's JWKS URL."""

    __tablename__ = "lti_tool_keys"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    kid: Mapped[str] = mapped_column(String(64))
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LtiPlatform(Base):
    """A learning platform (Moodle, Canvas...) an organisation's admin registered."""

    __tablename__ = "lti_platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id", name="ux_lti_platforms_issuer_client"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(200))
    deployment_ids: Mapped[list[Any]] = mapped_column(JSON)
    auth_login_url: Mapped[str] = mapped_column(String(500))
    auth_token_url: Mapped[str] = mapped_column(String(500))
    jwks_url: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LtiState(Base):
    """One OIDC login (kind ``login``: its nonce) or one deep-linking choice (kind
    ``deep_link``: where to return); single use, short-lived."""

    __tablename__ = "lti_states"
    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id"))
    kind: Mapped[str] = mapped_column(String(20))
    nonce: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LtiUserLink(Base):
    """A platform user (``sub``) and the Learnloop account it launches into, in the
    organisation that registered the platform."""

    __tablename__ = "lti_user_links"
    __table_args__ = (UniqueConstraint("platform_id", "sub", name="ux_lti_user_links_sub"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id"))
    sub: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LtiGradeLink(Base):
    """Where a learner's score for one placed resource goes (an AGS line item)."""

    __tablename__ = "lti_grade_links"
    __table_args__ = (
        UniqueConstraint("platform_id", "user_id", "resource_link_id", name="ux_lti_grade_links"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    sub: Mapped[str] = mapped_column(String(255))
    resource_link_id: Mapped[str] = mapped_column(String(255))
    lineitem: Mapped[str] = mapped_column(String(500))
    #: practice:<skill id> | lesson:<lesson id> | check:<role id>
    target: Mapped[str] = mapped_column(String(200))
    last_score: Mapped[float | None] = mapped_column(Float)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BadgeIssuerKey(Base):
    """The organisation's Open Badges issuer key (Ed25519), made on first issue.

    ``private_multibase`` is a secret: never logged or shown; the public half is the issuer's
    ``did:key``. ``subject_namespace`` (a random UUID) makes learners' opaque subject ids."""

    __tablename__ = "badge_issuer_keys"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    private_multibase: Mapped[str] = mapped_column(String(200))
    did: Mapped[str] = mapped_column(String(200))
    subject_namespace: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BadgeSettings(Base):
    """An organisation's Open Badges choices (0022): whether a learner also gets a credential
    for each skill of their role they meet (besides the one for the ready role)."""

    __tablename__ = "badge_settings"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    skill_badges: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BadgeCredential(Base):
    """An issued OpenBadgeCredential: one per learner and achievement, stored as signed.

    The achievement is a role (``role_id``) or one skill (``skill_id``, since 0041; before, a
    skill credential's ``role_id`` read ``skill:<skill id>``): exactly one of the two is set.
    ``status_index`` (0022) is the credential's index in its
    organisation's Bitstring Status List (drawn at random, unique in the organisation; None for
    credentials issued before status lists)."""

    __tablename__ = "badge_credentials"
    __table_args__ = (
        UniqueConstraint("user_id", "role_id", name="ux_badge_credentials_user_role"),
        UniqueConstraint("user_id", "skill_id", name="ux_badge_credentials_user_skill"),
        UniqueConstraint("org_id", "status_index", name="ux_badge_credentials_org_status"),
        CheckConstraint("(role_id IS NULL) <> (skill_id IS NULL)", name="ck_badge_credentials_role_or_skill"),
    )
    #: a random UUID: the credential's public id (``/credentials/<id>``)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    skill_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revocation_reason: Mapped[str | None] = mapped_column(String(500))
    status_index: Mapped[int | None] = mapped_column(Integer)

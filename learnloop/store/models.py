"""Tables. Responses are an append-only event log; mastery is derived state rebuilt from it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes, PostgreSQL ones in the session's time zone; every time
    we store is UTC, and is handed on in UTC (py-fsrs, for one, accepts nothing else)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


#: A date-time as served by the API: always with its offset (naive values, from SQLite, are UTC),
#: as the OpenAPI ``date-time`` format requires.
UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    join_code: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def team_name_key(name: str) -> str:
    """A team name as compared: trimmed, inner spaces collapsed, case-folded."""
    return " ".join(name.split()).casefold()


class Team(Base):
    """A team of an organisation, chosen from a list; ``name_key`` (the name trimmed, spaces
    collapsed, case-folded) is unique, so "Data team" and "data  team" are one team."""

    __tablename__ = "teams"
    __table_args__ = (
        UniqueConstraint("org_id", "name"),
        Index("uq_teams_org_name_key", "org_id", "name_key", unique=True),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(
        String(200), default=lambda context: team_name_key(context.get_current_parameters()["name"])
    )
    #: SCIM: the provisioning client's id and last document of this group (0016)
    external_id: Mapped[str | None] = mapped_column(String(200))
    scim_document: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20), default="learner")
    locale: Mapped[str] = mapped_column(String(10), default="en")
    consent_share: Mapped[bool] = mapped_column(Boolean, default=False)
    is_simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: set while the member is deactivated: no login, no session, no token works
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the identity provider's id for this person (SCIM ``externalId``)
    external_id: Mapped[str | None] = mapped_column(String(200))
    #: the OpenID Connect ``sub`` of the organisation's issuer this account logs in as
    sso_subject: Mapped[str | None] = mapped_column(String(255))
    email_reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    consent_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: SCIM: the provisioning client's userName (unique in the organisation) and last document
    scim_user_name: Mapped[str | None] = mapped_column(String(300))
    scim_document: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class AuthSession(Base):
    """A login: the cookie (web) or bearer token (API) is the secret whose hash is the key."""

    __tablename__ = "auth_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TeamAdmin(Base):
    """A member delegated to administer one team (its members only)."""

    __tablename__ = "team_admins"
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConsentEvent(Base):
    """A learner granted or withdrew sharing their individual figures with their manager."""

    __tablename__ = "consent_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrgIdentity(Base):
    """An organisation's single sign-on (OpenID Connect) and SCIM provisioning settings."""

    __tablename__ = "org_identity"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    oidc_issuer: Mapped[str] = mapped_column(String(500), default="")
    oidc_client_id: Mapped[str] = mapped_column(String(300), default="")
    #: never logged, never shown back (the admin page says only whether one is set)
    oidc_client_secret: Mapped[str] = mapped_column(String(500), default="")
    oidc_domains: Mapped[list[Any]] = mapped_column(JSON, default=list)
    sso_only: Mapped[bool] = mapped_column(Boolean, default=False)
    scim_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OidcLogin(Base):
    """A sign-in sent to the identity provider and not yet back: used once, then deleted."""

    __tablename__ = "oidc_logins"
    state: Mapped[str] = mapped_column(String(100), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(200))
    next_path: Mapped[str] = mapped_column(String(2000), default="/")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Invitation(Base):
    """An invitation to set a password; the e-mailed link holds the token, we keep its hash."""

    __tablename__ = "invitations"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EmailOutbox(Base):
    """An e-mail to send: written in the transaction that decides it, delivered (and retried)
    by ``services.people.mail.deliver_pending``."""

    __tablename__ = "email_outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(40))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginThrottle(Base):
    """Failed-login counters per account and per client address, one fixed window each.

    Shared by every worker process through the database; the key is a hash, never the address
    or e-mail itself."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class ContentPack(Base):
    """A validated pack as a JSON document; exactly one is active."""

    __tablename__ = "content_packs"
    id: Mapped[int] = mapped_column(primary_key=True)
    pack_id: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[str] = mapped_column(String(40))
    fingerprint: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Enrolment(Base):
    __tablename__ = "enrolments"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role_id: Mapped[str] = mapped_column(String(80))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Response(Base):
    """One answer. Append-only: never updated or deleted; the source of truth."""

    __tablename__ = "responses"
    __table_args__ = (
        Index("ix_responses_user_time", "user_id", "id"),
        # one response per presentation of an item (NULL for skill checks and older rows)
        Index("ux_responses_user_presentation", "user_id", "presentation_id", unique=True),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    item_id: Mapped[str] = mapped_column(String(80), index=True)
    skills: Mapped[list[Any]] = mapped_column(JSON)
    kind: Mapped[str] = mapped_column(String(20))
    context: Mapped[str] = mapped_column(String(20), default="practice")
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    correct: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float] = mapped_column(Float)
    hints_used: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: the presentation (``PendingItem.presentation_id``) this answers; None outside practice
    presentation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class Mastery(Base):
    """Derived: P(known) per learner and skill after every answer in the log."""

    __tablename__ = "mastery"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    skill_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    p_known: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    correct: Mapped[int] = mapped_column(Integer, default=0)
    last_response_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: the live model's P(correct) on the skill's next item (None in rows written before 0006)
    p_correct: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: what backs ``p_known``: ``science.evidence.SkillEvidence`` folded answer by answer, in
    #: its versioned stored form (None in rows written before 0034: folded from the log when
    #: read, stored at the skill's next answer or by ``learnloop rebuild``; a migration that
    #: changes the stored form's version sets it back to NULL). Loaded on access.
    evidence: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True, deferred=True
    )
    #: its summary, what a target check reads for a whole team without decoding ``evidence``:
    #: distinct items answered right, a text or code item answered right, the CUSUM of
    #: evidence against guessing, the newest right answer (POSIX seconds)
    ev_items: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ev_open: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    ev_cusum: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    ev_last_right: Mapped[float | None] = mapped_column(Float, nullable=True)


class KTState(Base):
    """Derived: one learner's knowledge-tracing state under one fitted model (``model_params``),
    folded over their answers up to ``last_response_id``; rebuilt from the log with mastery."""

    __tablename__ = "kt_states"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    model_params_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_response_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: every traced skill's P(correct) from ``state``, ``{"for": last_response_id, "p": [...]}``
    #: by skill code: what the policy reads on each next item, without decoding the state
    predictions: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class LearnerTally(Base):
    """Derived: what backs a learner's standing on the team report, counted as answers arrive
    (``services/learner_tally.py``) and rebuilt from the log with mastery: answers given in
    practice, and distinct items answered right (in any context, the instructors' decisions
    applied)."""

    __tablename__ = "learner_tallies"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    practice_answers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    right_items: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class MasteryHistory(Base):
    """Derived: mastery after each answer, for the learner's progress over time."""

    __tablename__ = "mastery_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    skill_id: Mapped[str] = mapped_column(String(80))
    response_id: Mapped[int] = mapped_column(Integer)
    p_known: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PendingItem(Base):
    """The item a learner is looking at, with when it was shown and how many hints they took."""

    __tablename__ = "pending_items"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(String(200), default="")
    presented_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    hints_shown: Mapped[int] = mapped_column(Integer, default=0)
    #: new for every item shown; an answer carries it, and each presentation is answered once
    presentation_id: Mapped[str] = mapped_column(String(36), default=lambda: uuid.uuid4().hex)
    #: answers given in this presentation so far (a wrong code answer may be tried again)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RetryAttempt(Base):
    """A second or later attempt at a code item within one presentation. Append-only.

    The first attempt is the presentation's ``Response`` and the only one that counts for
    mastery, knowledge tracing and item statistics; retries are kept for the learner's and the
    instructor's record."""

    __tablename__ = "retry_attempts"
    __table_args__ = (
        Index("ux_retry_attempts_presentation", "user_id", "presentation_id", "attempt", unique=True),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    item_id: Mapped[str] = mapped_column(String(80))
    presentation_id: Mapped[str] = mapped_column(String(36))
    #: 2 for the first retry, 3 for the next...
    attempt: Mapped[int] = mapped_column(Integer)
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    correct: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelParams(Base):
    """Fitted model parameters (knowledge tracing, IRT), newest row per kind wins."""

    __tablename__ = "model_params"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    fitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    n_responses: Mapped[int] = mapped_column(Integer, default=0)


class Assessment(Base):
    """A skill check: an adaptive test for one role; its answers are also in the response log."""

    __tablename__ = "assessments"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role_id: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="in_progress")  # in_progress | done
    administered: Mapped[list[Any]] = mapped_column(JSON, default=list)  # item ids in order
    responses: Mapped[list[Any]] = mapped_column(JSON, default=list)  # 0/1 per administered item
    current_item: Mapped[str | None] = mapped_column(String(80))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- Reports (learnloop.services.reports*): weekly gap snapshots and the indexes dashboards read by.


class ReportWeek(Base):
    """Marks an organisation's week whose gap snapshot is stored (one writer wins per week)."""

    __tablename__ = "report_weeks"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    week_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SkillGapWeekly(Base):
    """Derived: per team, target role and target skill, the holders below target at a week's end.

    Team and role are the membership when the week was computed; team_id is None for people
    without a team.
    """

    __tablename__ = "skill_gap_weekly"
    __table_args__ = (Index("ix_skill_gap_weekly_org_week", "org_id", "week_start"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    week_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    team_id: Mapped[int | None] = mapped_column(Integer)
    role_id: Mapped[str] = mapped_column(String(80))
    skill_id: Mapped[str] = mapped_column(String(80))
    people: Mapped[int] = mapped_column(Integer)
    blocked: Mapped[int] = mapped_column(Integer)
    gap_sum: Mapped[float] = mapped_column(Float)
    hours: Mapped[float] = mapped_column(Float)


class RoleReadinessWeekly(Base):
    """Derived: per team and target role, how many holders were ready or close at a week's end."""

    __tablename__ = "role_readiness_weekly"
    __table_args__ = (Index("ix_role_readiness_weekly_org_week", "org_id", "week_start"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    week_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    team_id: Mapped[int | None] = mapped_column(Integer)
    role_id: Mapped[str] = mapped_column(String(80))
    people: Mapped[int] = mapped_column(Integer)
    ready: Mapped[int] = mapped_column(Integer)
    close: Mapped[int] = mapped_column(Integer)
    hours: Mapped[float] = mapped_column(Float)


# The item analysis reads an organisation's newest answers; "as of" lookups read one learner's
# history of one skill up to a moment; team dashboards read every member's mastery and its
# evidence summary from the index alone (covering), without visiting the table rows (which
# hold the evidence JSON).
Index("ix_responses_org_id_id", Response.org_id, Response.id)
# Whether a learner answered an item right before (the learner tally, on each answer).
Index("ix_responses_user_item", Response.user_id, Response.item_id)
Index(
    "ix_mastery_history_user_skill_time",
    MasteryHistory.user_id,
    MasteryHistory.skill_id,
    MasteryHistory.created_at,
    MasteryHistory.id,
)
Index(
    "ix_mastery_user_skill_summary",
    Mastery.user_id,
    Mastery.skill_id,
    Mastery.p_known,
    Mastery.attempts,
    Mastery.ev_items,
    Mastery.ev_open,
    Mastery.ev_cusum,
    Mastery.ev_last_right,
)


class ItemAnalysisRun(Base):
    """Derived: an organisation's item analysis (the report as JSON), recomputed when stale."""

    __tablename__ = "item_analysis_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    pack_row_id: Mapped[int] = mapped_column(Integer)
    irt_params_id: Mapped[int] = mapped_column(Integer, default=0)
    last_response_id: Mapped[int] = mapped_column(Integer)
    answers: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)


# --- Guidance (learnloop.services.guidance): spaced-review cards derived from the response log.


class ReviewCard(Base):
    """Derived: the FSRS memory card of one item for one learner, replayed from the response log.

    ``last_response_id`` is the newest answer folded in; answers after it are replayed before
    the card is read, so the table is a cache that ``learnloop rebuild`` can drop and refill.
    """

    __tablename__ = "review_cards"
    __table_args__ = (Index("ix_review_cards_user_due", "user_id", "due"),)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    state: Mapped[int] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(Integer)
    stability: Mapped[float | None] = mapped_column(Float)
    difficulty: Mapped[float | None] = mapped_column(Float)
    due: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_review: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reps: Mapped[int] = mapped_column(Integer, default=0)
    lapses: Mapped[int] = mapped_column(Integer, default=0)
    last_response_id: Mapped[int] = mapped_column(Integer, default=0)


# --- Large models as a service (learnloop.llm, services.llm_usage / tutoring / grading / authoring).


class LLMUsage(Base):
    """One model call (or a cache hit, a fallback, a refusal) with its tokens and cost."""

    __tablename__ = "llm_usage"
    __table_args__ = (Index("ix_llm_usage_org_time", "org_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    task: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(200), default="")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ok | error | timeout | budget
    outcome: Mapped[str] = mapped_column(String(20), default="ok")
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LLMCacheEntry(Base):
    """A model response keyed by the hash of (model, prompt, parameters)."""

    __tablename__ = "llm_cache"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LLMBudget(Base):
    """An organisation's monthly spending limit on model calls (US dollars)."""

    __tablename__ = "llm_budgets"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    monthly_usd: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TutorConversation(Base):
    """A learner's conversation with the tutor about one item or lesson; the learner may delete it."""

    __tablename__ = "tutor_conversations"
    __table_args__ = (Index("ix_tutor_conversations_user", "user_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    item_id: Mapped[str | None] = mapped_column(String(80))
    lesson_id: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TutorMessage(Base):
    __tablename__ = "tutor_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("tutor_conversations.id", ondelete="CASCADE"), index=True
    )
    #: learner | tutor
    role: Mapped[str] = mapped_column(String(10))
    content: Mapped[str] = mapped_column(Text)
    citations: Mapped[list[Any]] = mapped_column(JSON, default=list)
    provider: Mapped[str] = mapped_column(String(40), default="")
    notices: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GradeReview(Base):
    """A free-text answer an instructor must grade: low confidence or unusable model output.

    The response log stays append-only: the instructor's decision lives here and overrides
    the provisional grade of ``response_id`` wherever grades are read.
    """

    __tablename__ = "grade_reviews"
    __table_args__ = (Index("ix_grade_reviews_org_status", "org_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    response_id: Mapped[int | None] = mapped_column(ForeignKey("responses.id"), unique=True)
    item_id: Mapped[str] = mapped_column(String(80))
    answer_text: Mapped[str] = mapped_column(Text)
    provisional_correct: Mapped[bool] = mapped_column(Boolean)
    provisional_score: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    grader: Mapped[str] = mapped_column(String(80))
    #: low_confidence | malformed_output
    reason: Mapped[str] = mapped_column(String(40))
    rationale: Mapped[str] = mapped_column(Text, default="")
    #: pending | decided
    status: Mapped[str] = mapped_column(String(20), default="pending")
    decided_correct: Mapped[bool | None] = mapped_column(Boolean)
    decided_score: Mapped[float | None] = mapped_column(Float)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# One learner's decisions: read whenever their new answers are folded into review cards.
Index("ix_grade_reviews_user_status", GradeReview.user_id, GradeReview.status)


class ItemDraft(Base):
    """A generated item waiting for an instructor; only approved drafts reach a pack."""

    __tablename__ = "item_drafts"
    __table_args__ = (Index("ix_item_drafts_org_status", "org_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    skill_id: Mapped[str] = mapped_column(String(80))
    lesson_id: Mapped[str | None] = mapped_column(String(80))
    item: Mapped[dict[str, Any]] = mapped_column(JSON)
    provider: Mapped[str] = mapped_column(String(40))
    #: closest existing item and its embedding similarity (de-duplication)
    nearest_item_id: Mapped[str | None] = mapped_column(String(80))
    similarity: Mapped[float] = mapped_column(Float, default=0.0)
    #: pending | approved | rejected
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: who saved the current version's edits (0025); None: the version is ``created_by``'s
    edited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pack_row_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """A unit of background work (``learnloop/jobs``): the record of its state and attempts,
    whichever runner (procrastinate on PostgreSQL, a thread on SQLite) runs it."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_run_at", "state", "run_at"), Index("ix_jobs_org", "org_id", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the organisation the job works for; None for work across organisations (scheduled fits)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    task: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: at most one job per key, whatever its state (enqueueing the same key again returns it)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    #: queued | running | retry | done | dead
    state: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    #: when the job (or its next retry) is due
    run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: what the task returned (small JSON), e.g. the response a grading job wrote
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LearnerGoal(Base):
    """A learner's own weekly goal (answers a week; None: no goal) and whether the home page
    shows their streak. Set by the learner on their home page; absent until they first do."""

    __tablename__ = "learner_goals"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    weekly_answers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    show_streak: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrgDataPolicy(Base):
    """An organisation's personal-data settings (``services/people/data_rights.py``)."""

    __tablename__ = "org_data_policies"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    #: days after SCIM deprovisioning until the person is erased; None: keep (deactivate only)
    deprovision_retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: whether SCIM ``active=false`` also schedules erasure (else only SCIM DELETE does)
    erase_on_deactivate: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrgAuthoringPolicy(Base):
    """An organisation's publishing rule for drafted items (``services/authoring.py``, 0025)."""

    __tablename__ = "org_authoring_policies"
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    #: a draft is published only when someone other than the writer of its version approves it
    second_review: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ErasureLog(Base):
    """One erasure: which member id, when, by whom (an admin's id, or None for SCIM/retention).
    Holds no personal data; one row per erased member."""

    __tablename__ = "erasure_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    erased_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: admin | scim | retention
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

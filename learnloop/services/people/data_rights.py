"""Personal data rights (GDPR, PIPL): export everything stored about a person, erase a person,
and erase on SCIM deprovisioning after the organisation's retention period.

**Export** (:func:`export_member`): one document with every table's rows about the person (rows
whose ``user_id``, or an item draft's ``created_by``, is theirs; the messages of their tutor
conversations; the xAPI statements naming them), their own ``users`` row without the password
hash, and ``schema_version``. :func:`export_json` and :func:`export_csv_zip` render it (the zip
holds one UTF-8-with-BOM CSV per table). A learner exports themselves; an admin any member of
their organisation.

**Erasure** (:func:`erase_member`), in one transaction:

- the ``users`` row is anonymised *in place*: e-mail ``erased-<id>@erased.invalid``, name
  ``erased-<id>``, no password, no SSO subject, SCIM ids or document, no manager, no consent,
  no reminders, deactivated. Its id, organisation, team and role stay, so the learning records
  that point at it (answers, mastery, its history, tallies, knowledge-tracing state, review cards,
  enrolments, assessments, retries, AI usage) stay as they are, now about an anonymous member.
  Item analysis, team aggregates and weekly snapshots therefore read exactly the same rows as
  before, and ``learnloop rebuild --check`` replays the same log into the same state. (Re-pointing
  answers to one tombstone per organisation would merge several people into one learner and
  change every per-learner statistic; detaching them would break the mastery replay.)
- deleted: logins and API tokens, invitations, the consent log, team-admin grants, SSO and LTI
  links (user and grade links), issued badges, the learner's own goal, tutor conversations and
  their messages, the person's e-mail outbox rows, and the organisation's xAPI outbox rows that
  name them; other members' ``manager_id`` pointing at them is cleared.
- one ``erasure_log`` row: organisation, member id, who (admin id; None for SCIM/retention),
  source and time. No e-mail or name. A second erasure of the same member is refused (409).

**Retention** (:func:`schedule_deprovision`): ``org_data_policies.deprovision_retention_days``
(None, the default: keep, i.e. SCIM only deactivates). 0: SCIM DELETE erases in its own
transaction; N > 0: a ``people.erase`` job runs N days later and erases unless the member was
reactivated meanwhile. With ``erase_on_deactivate`` SCIM ``active=false`` schedules it too.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import zipfile
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from learnloop.errors import Conflict, Forbidden, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.services import throttle
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store import models_interop
from learnloop.store.models import (
    Base,
    EmailOutbox,
    ErasureLog,
    LoginThrottle,
    OrgDataPolicy,
    TutorConversation,
    TutorMessage,
    User,
    utcnow,
)

SCHEMA_VERSION = 1
#: the longest retention an organisation may set (ten years)
MAX_RETENTION_DAYS = 3650
NO_PASSWORD = "!no-password"

#: tables whose rows about the person are deleted on erasure (by their ``user_id``)
ERASE_TABLES = (
    "auth_sessions",
    "invitations",
    "consent_events",
    "team_admins",
    "lti_user_links",
    "lti_grade_links",
    "badge_credentials",
    "learner_goals",
)
#: tables kept on erasure: learning records and accounting, anonymous once the user row is
KEEP_TABLES = (
    "responses",
    "mastery",
    "mastery_history",
    "learner_tallies",
    "kt_states",
    "review_cards",
    "enrolments",
    "pending_items",
    "retry_attempts",
    "assessments",
    "llm_usage",
    "grade_reviews",
    "item_drafts",
    "webhook_endpoints",
)
#: tables whose JSON ``data`` names a person by ``learner_id`` / ``member_id`` (webhook
#: deliveries): exported, and deleted on erasure
EVENT_TABLES = ("webhook_deliveries",)
#: handled by name in :func:`_erase`: the user row, tutor conversations, the e-mail outbox
SPECIAL_TABLES = ("users", "tutor_conversations", "email_outbox", "erasure_log", *EVENT_TABLES)
#: model modules whose tables may hold rows about a person
_MODEL_MODULES = ("learnloop.store.models_webhooks",)
#: columns naming another person (a reviewer, a revoker, a manager): not the row's subject
_NOT_OWNER = {"manager_id", "reviewer_id", "reviewed_by", "revoked_by", "erased_by", "member_id"}


class ErasureResult(BaseModel):
    member_id: int
    erased_at: datetime
    deleted_rows: dict[str, int]


class DataPolicy(BaseModel):
    deprovision_retention_days: int | None
    erase_on_deactivate: bool


def _tables() -> list[Table]:
    assert models_interop  # registers the interop tables on Base.metadata
    for module in _MODEL_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:  # a part of the product not installed in this checkout
            continue
    return list(Base.metadata.sorted_tables)


def user_tables() -> dict[str, list[str]]:
    """Every table with a column referring to ``users.id``, and those columns."""
    found: dict[str, list[str]] = {}
    for table in _tables():
        cols = [
            c.name for c in table.columns if any(fk.column.table.name == "users" for fk in c.foreign_keys)
        ]
        if cols and table.name != "users":
            found[table.name] = cols
    return found


def _owner_column(table: Table) -> str | None:
    if "user_id" in table.columns:
        return "user_id"
    if table.name == "item_drafts":
        return "created_by"
    return None


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def _member_for(session: Session, caller: CurrentUser, member_id: int, *, admin_only: bool) -> User:
    if (member_id != caller.id or admin_only) and caller.role != "admin":
        raise Forbidden(_("Only an organisation admin can do this for another member."))
    member = session.get(User, member_id)
    if member is None or member.org_id != caller.org_id:
        raise NotFound(_("No member with id %(id)s in your organisation.") % {"id": member_id})
    return member


def _xapi_rows(session: Session, member: User) -> list[Any]:
    """The organisation's xAPI outbox rows whose statement names the member (account or mbox)."""
    from learnloop.interop import xapi

    settings = session.get(models_interop.XapiSettings, member.org_id)
    needles = [f"mailto:{member.email}"]
    if settings is not None:
        site = xapi.Site(home_page=settings.home_page, namespace=settings.id_namespace)
        needles.append(json.dumps(site.user_key(member.id)))
    rows = session.scalars(
        select(models_interop.XapiOutbox).where(models_interop.XapiOutbox.org_id == member.org_id)
    )
    return [r for r in rows if any(n in json.dumps(r.statement) for n in needles)]


def _event_rows(session: Session, member: User) -> dict[str, list[dict[str, Any]]]:
    """Rows of the event tables (when installed) whose data names the member."""
    found: dict[str, list[dict[str, Any]]] = {}
    tables = {t.name: t for t in _tables()}
    for name in EVENT_TABLES:
        table = tables.get(name)
        if table is None:
            continue
        rows = session.execute(select(table).where(table.c.org_id == member.org_id)).mappings()
        found[name] = [
            {k: _cell(v) for k, v in r.items()}
            for r in rows
            if isinstance(r["data"], dict)
            and member.id in (r["data"].get("learner_id"), r["data"].get("member_id"))
        ]
    return found


def _collect(session: Session, member: User) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in _tables():
        if table.name == "users":
            row = session.execute(select(table).where(table.c.id == member.id)).mappings().one()
            tables["users"] = [{k: _cell(v) for k, v in row.items() if k != "password_hash"}]
            continue
        owner = _owner_column(table)
        if owner is None or table.name == "erasure_log":
            continue
        rows = session.execute(select(table).where(table.c[owner] == member.id)).mappings()
        tables[table.name] = [{k: _cell(v) for k, v in r.items()} for r in rows]
    conversations = [int(r["id"]) for r in tables.get("tutor_conversations", [])]
    messages = session.execute(
        select(TutorMessage.__table__).where(TutorMessage.conversation_id.in_(conversations))
    ).mappings()
    tables["tutor_messages"] = [{k: _cell(v) for k, v in r.items()} for r in messages]
    xapi_table = models_interop.XapiOutbox.__table__
    tables["xapi_outbox"] = [
        {c.name: _cell(getattr(r, c.key)) for c in xapi_table.columns} for r in _xapi_rows(session, member)
    ]
    tables.update(_event_rows(session, member))
    return dict(sorted(tables.items()))


def export_member(ctx: AppContext, caller: CurrentUser, member_id: int | None = None) -> dict[str, Any]:
    """Everything stored about a member (the caller by default) as one JSON-ready document."""
    with ctx.session() as session:
        member = _member_for(session, caller, caller.id if member_id is None else member_id, admin_only=False)
        return {
            "schema_version": SCHEMA_VERSION,
            "exported_at": utcnow().isoformat(),
            "member_id": member.id,
            "organisation_id": member.org_id,
            "tables": _collect(session, member),
        }


class ExportFile(BaseModel):
    """An export ready to download."""

    body: bytes
    media_type: str
    filename: str


def export_file(ctx: AppContext, caller: CurrentUser, member_id: int | None, fmt: str) -> ExportFile:
    """:func:`export_member` as a file: ``json`` (one document) or ``csv`` (a zip of one CSV per
    table)."""
    if fmt not in ("json", "csv"):
        raise InvalidInput(_("The format must be json or csv."))
    document = export_member(ctx, caller, member_id)
    name = f"learnloop-member-{document['member_id']}"
    if fmt == "json":
        return ExportFile(body=export_json(document), media_type="application/json", filename=f"{name}.json")
    return ExportFile(body=export_csv_zip(document), media_type="application/zip", filename=f"{name}-csv.zip")


def export_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2, default=str).encode("utf-8")


def export_csv_zip(document: dict[str, Any]) -> bytes:
    """A zip of one CSV per table (UTF-8 with BOM, JSON cells as JSON text) plus ``export.json``
    with the schema version; tables with no rows about the member are left out."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        meta = {k: v for k, v in document.items() if k != "tables"}
        archive.writestr("export.json", json.dumps(meta, indent=2))
        for name, rows in document["tables"].items():
            if not rows:
                continue
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {
                        k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                        for k, v in row.items()
                    }
                )
            archive.writestr(f"{name}.csv", "\ufeff" + text.getvalue())
    return out.getvalue()


def is_erased(session: Session, member_id: int) -> bool:
    return session.scalar(select(ErasureLog.id).where(ErasureLog.member_id == member_id)) is not None


def _erase(
    ctx: AppContext, session: Session, member: User, erased_by: int | None, source: str
) -> ErasureResult:
    if is_erased(session, member.id):
        raise Conflict(_("This member has already been erased."))
    counts: dict[str, int] = {}
    for row in _xapi_rows(session, member):
        session.delete(row)
        counts["xapi_outbox"] = counts.get("xapi_outbox", 0) + 1
    outbox = session.execute(
        delete(EmailOutbox).where(
            (EmailOutbox.user_id == member.id) | (EmailOutbox.to_address == member.email)
        )
    )
    counts["email_outbox"] = int(getattr(outbox, "rowcount", 0) or 0)
    conversations = select(TutorConversation.id).where(TutorConversation.user_id == member.id)
    session.execute(delete(TutorMessage).where(TutorMessage.conversation_id.in_(conversations)))
    result = session.execute(delete(TutorConversation).where(TutorConversation.user_id == member.id))
    counts["tutor_conversations"] = int(getattr(result, "rowcount", 0) or 0)
    tables = {t.name: t for t in _tables()}
    for name, rows in _event_rows(session, member).items():
        ids = [r["id"] for r in rows]
        session.execute(delete(tables[name]).where(tables[name].c.id.in_(ids)))
        counts[name] = len(ids)
    for name in ERASE_TABLES:
        result = session.execute(delete(tables[name]).where(tables[name].c.user_id == member.id))
        counts[name] = int(getattr(result, "rowcount", 0) or 0)
    session.execute(update(User).where(User.manager_id == member.id).values(manager_id=None))
    # the login throttle's counter of the account (a keyed hash of the e-mail address)
    account = throttle.login_budgets(ctx, member.email, None)[0].key
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == account))
    member.email = f"erased-{member.id}@erased.invalid"
    member.name = f"erased-{member.id}"
    member.password_hash = NO_PASSWORD
    member.external_id = None
    member.sso_subject = None
    member.scim_user_name = None
    member.scim_document = None
    member.manager_id = None
    member.consent_share = False
    member.consent_changed_at = None
    member.email_reminders = False
    now = utcnow()
    if member.deactivated_at is None:
        member.deactivated_at = now
    session.add(ErasureLog(org_id=member.org_id, member_id=member.id, erased_by=erased_by, source=source))
    session.flush()
    return ErasureResult(member_id=member.id, erased_at=now, deleted_rows=counts)


def erase_member(ctx: AppContext, admin: CurrentUser, member_id: int) -> ErasureResult:
    """An admin erases a member of their organisation (see the module's docstring)."""
    with ctx.session() as session:
        member = _member_for(session, admin, member_id, admin_only=True)
        if member.id == admin.id:
            raise InvalidInput(_("You cannot erase your own account."))
        return _erase(ctx, session, member, admin.id, "admin")


def erase_scheduled(ctx: AppContext, org_id: int, member_id: int) -> str:
    """The ``people.erase`` job: erase a deprovisioned member unless reactivated or erased since."""
    with ctx.session() as session:
        member = session.get(User, member_id)
        if member is None or member.org_id != org_id:
            return "missing"
        if is_erased(session, member_id):
            return "already erased"
        if member.deleted_at is None and member.deactivated_at is None:
            return "reactivated"
        _erase(ctx, session, member, None, "retention")
        return "erased"


def get_policy(ctx: AppContext, admin: CurrentUser) -> DataPolicy:
    admin.require("admin")
    with ctx.session() as session:
        row = session.get(OrgDataPolicy, admin.org_id)
        return DataPolicy(
            deprovision_retention_days=row.deprovision_retention_days if row else None,
            erase_on_deactivate=bool(row.erase_on_deactivate) if row else False,
        )


def set_policy(
    ctx: AppContext, admin: CurrentUser, retention_days: int | None, erase_on_deactivate: bool = False
) -> DataPolicy:
    """Set the retention after SCIM deprovisioning (None: keep, deactivate only; 0: erase at once)."""
    admin.require("admin")
    if retention_days is not None and not 0 <= retention_days <= MAX_RETENTION_DAYS:
        raise InvalidInput(
            _("The retention must be between 0 and %(max)s days, or empty to keep.")
            % {"max": MAX_RETENTION_DAYS}
        )
    with ctx.session() as session:
        row = session.get(OrgDataPolicy, admin.org_id)
        if row is None:
            row = OrgDataPolicy(org_id=admin.org_id)
            session.add(row)
        row.deprovision_retention_days = retention_days
        row.erase_on_deactivate = erase_on_deactivate
        row.updated_at = utcnow()
    return DataPolicy(deprovision_retention_days=retention_days, erase_on_deactivate=erase_on_deactivate)


def schedule_deprovision(
    ctx: AppContext, session: Session, member: User, *, deactivated_only: bool = False
) -> str:
    """Apply the organisation's retention to a member SCIM deprovisioned, in the caller's
    transaction: "kept", "erased" (retention 0) or "scheduled" (a ``people.erase`` job)."""
    from learnloop.jobs import enqueue

    policy = session.get(OrgDataPolicy, member.org_id)
    if policy is None or policy.deprovision_retention_days is None:
        return "kept"
    if deactivated_only and not policy.erase_on_deactivate:
        return "kept"
    if is_erased(session, member.id):
        return "erased"
    days = policy.deprovision_retention_days
    if days == 0:
        _erase(ctx, session, member, None, "scim")
        return "erased"
    enqueue(
        ctx,
        "people.erase",
        {"org_id": member.org_id, "member_id": member.id},
        dedupe_key=f"people.erase:{member.id}:{utcnow().date().isoformat()}",
        org_id=member.org_id,
        delay_s=days * 86400.0,
        session=session,
    )
    return "scheduled"

"""Open Badges 3.0: an ``OpenBadgeCredential`` when a learner's role is ready.

A role is ready when every target of it is met with evidence (mastery at the target and the
evidence rule of ``science/evidence.py``, as for the xAPI "mastered" statement). The credential
is issued in the transaction of the answer that made the role ready, once per learner and role
(a unique row; a second issue returns the first), signed as a W3C Verifiable Credential 2.0
with an eddsa-rdfc-2022 Data Integrity proof (``interop/vc.py``) by the organisation's issuer
key (Ed25519, made on first issue, its ``did:key`` the issuer's id; the private half is never
logged or shown). The learner is named by an opaque id (``urn:uuid:``), never by name or
e-mail. Anyone may fetch ``/credentials/<id>`` and verify it offline; an admin of the issuing
organisation may revoke it, and the verification answer then says so.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from learnloop.content.models import LEVEL_MASTERY, Role
from learnloop.errors import InvalidInput, NotFound
from learnloop.i18n import _, get_locale, set_locale
from learnloop.interop import vc
from learnloop.services.auth import CurrentUser
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.enrolment import current_role
from learnloop.services.mastery import targets_met
from learnloop.store.models import Organisation, User, as_utc, utcnow
from learnloop.store.models_interop import BadgeCredential, BadgeIssuerKey

log = logging.getLogger(__name__)

CONTEXT = [
    "https://www.w3.org/ns/credentials/v2",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
]
LANGUAGES = ("en", "zh_CN")


class CredentialView(BaseModel):
    id: str
    url: str
    role_id: str
    role_name: str
    issued_at: datetime
    revoked: bool
    revoked_at: datetime | None


class Verification(BaseModel):
    """What ``/credentials/<id>`` answers: the stored credential and what a check of it found."""

    id: str
    #: the proof verifies against the issuer's did:key with the shipped, pinned contexts
    verified: bool
    #: active | revoked
    status: str
    revoked_at: datetime | None
    revocation_reason: str | None
    problem: str | None
    credential: dict[str, Any]


def _key(session: Session, org_id: int) -> tuple[Ed25519PrivateKey, BadgeIssuerKey]:
    """The organisation's issuer key, made (and stored) on first use."""
    row = session.get(BadgeIssuerKey, org_id)
    if row is None:
        key = Ed25519PrivateKey.generate()
        mb = vc.public_multibase(key)
        try:
            with session.begin_nested():
                session.add(
                    BadgeIssuerKey(
                        org_id=org_id,
                        private_multibase=vc.private_multibase(key),
                        did=f"did:key:{mb}",
                        subject_namespace=str(uuid.uuid4()),
                    )
                )
        except IntegrityError:  # another transaction made it first: use theirs
            pass
        row = session.get(BadgeIssuerKey, org_id)
        if row is None:
            raise RuntimeError("the organisation's issuer key could not be stored")
        log.info("badges: issuer key made for organisation %s (%s)", org_id, row.did)
    return vc.private_key_from_multibase(row.private_multibase), row


def subject_id(row: BadgeIssuerKey, user_id: int) -> str:
    """The learner's opaque id in the organisation's credentials (stable, not their account id)."""
    return f"urn:uuid:{uuid.uuid5(uuid.UUID(row.subject_namespace), f'learner:{user_id}')}"


def role_ready(session: Session, ctx: AppContext, active: ActivePack, user_id: int, role: Role) -> bool:
    """Every target of ``role`` met, with enough evidence, now."""
    targets = {s: LEVEL_MASTERY[level] for s, level in role.targets.items()}
    met = targets_met(session, ctx.settings, active.items_by_skill, user_id, targets, utcnow())
    return bool(targets) and len(met) == len(targets)


def _in_locale(locale: str, make: Callable[[], str]) -> str:
    previous = get_locale()
    set_locale(locale)
    try:
        return make()
    finally:
        set_locale(previous)


def _level_name(level: int) -> str:
    return {1: _("working knowledge"), 2: _("proficient"), 3: _("expert")}[level]


def _criteria(active: ActivePack, role: Role) -> str:
    """The role's criteria in English and Simplified Chinese (Markdown), with the pack's texts
    in each language where the pack has them."""
    parts = []
    for locale in LANGUAGES:
        pack = active.localized(locale)
        local_role = pack.roles.get(role.id, role)

        def text(pack: ActivePack = pack, local_role: Role = local_role) -> str:
            lines = [
                _("Ready for the role {role}: every target below met, with enough evidence.").format(
                    role=local_role.name
                )
            ]
            for skill_id, level in sorted(role.targets.items()):
                lines.append(
                    "- "
                    + _("{skill}: {level} (mastery at least {target:.0%})").format(
                        skill=pack.pack.skill(skill_id).name,
                        level=_level_name(level),
                        target=LEVEL_MASTERY[level],
                    )
                )
            return "\n".join(lines)

        parts.append(_in_locale(locale, text))
    return "\n\n".join(parts)


def _document(
    ctx: AppContext,
    active: ActivePack,
    org: Organisation,
    key_row: BadgeIssuerKey,
    credential_id: str,
    user_id: int,
    role: Role,
    at: datetime,
) -> dict[str, Any]:
    base = ctx.settings.public_url.rstrip("/")
    zh_role = active.localized("zh_CN").roles.get(role.id, role)
    names = role.name if zh_role.name == role.name else f"{role.name} / {zh_role.name}"
    return {
        "@context": CONTEXT,
        "id": f"{base}/credentials/{credential_id}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": names,
        "issuer": {"id": key_row.did, "type": ["Profile"], "name": org.name},
        "validFrom": as_utc(at).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "credentialSubject": {
            "id": subject_id(key_row, user_id),
            "type": ["AchievementSubject"],
            "achievement": {
                "id": f"urn:learnloop:achievement:{org.slug}:{role.id}",
                "type": ["Achievement"],
                "achievementType": "Competency",
                "name": names,
                "description": role.description or role.name,
                "criteria": {"narrative": _criteria(active, role)},
                "inLanguage": "en",
            },
        },
    }


def issue_if_ready(
    session: Session, ctx: AppContext, active: ActivePack, org_id: int, user_id: int
) -> str | None:
    """In the caller's transaction: the learner's credential for their role when the role is
    ready (issued now if it was not yet); None when no role or not ready."""
    role_id = current_role(session, user_id)
    role = active.roles.get(role_id) if role_id else None
    if role is None:
        return None
    done = session.scalar(
        select(BadgeCredential.id).where(
            BadgeCredential.user_id == user_id, BadgeCredential.role_id == role.id
        )
    )
    if done is not None:
        return str(done)
    if not role_ready(session, ctx, active, user_id, role):
        return None
    org = session.get(Organisation, org_id)
    user = session.get(User, user_id)
    if org is None or user is None or user.org_id != org_id:
        raise InvalidInput(_("No such learner in this organisation."))
    key, key_row = _key(session, org_id)
    credential_id = str(uuid.uuid4())
    at = utcnow()
    document = _document(ctx, active, org, key_row, credential_id, user_id, role, at)
    signed = vc.sign(
        document,
        key,
        verification_method=f"{key_row.did}#{key_row.did.removeprefix('did:key:')}",
        created=document["validFrom"],
    )
    try:
        with session.begin_nested():
            session.add(
                BadgeCredential(
                    id=credential_id,
                    org_id=org_id,
                    user_id=user_id,
                    role_id=role.id,
                    document=signed,
                    issued_at=at,
                )
            )
    except IntegrityError:  # issued meanwhile by another transaction: that one stands
        existing = session.scalar(
            select(BadgeCredential.id).where(
                BadgeCredential.user_id == user_id, BadgeCredential.role_id == role.id
            )
        )
        return str(existing) if existing is not None else None
    log.info("badges: credential %s issued (organisation %s, role %s)", credential_id, org_id, role.id)
    return credential_id


def check_now(ctx: AppContext, user: CurrentUser) -> str | None:
    """Issue the caller's credential if their role is ready (e.g. after the rules changed)."""
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id)
        return issue_if_ready(session, ctx, active, user.org_id, user.id)


def _view(ctx: AppContext, active: ActivePack, row: BadgeCredential) -> CredentialView:
    role = active.roles.get(row.role_id)
    return CredentialView(
        id=row.id,
        url=f"{ctx.settings.public_url.rstrip('/')}/credentials/{row.id}",
        role_id=row.role_id,
        role_name=role.name if role else row.role_id,
        issued_at=as_utc(row.issued_at),
        revoked=row.revoked_at is not None,
        revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
    )


def my_credentials(ctx: AppContext, user: CurrentUser) -> list[CredentialView]:
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id).localized()
        rows = session.scalars(
            select(BadgeCredential)
            .where(BadgeCredential.user_id == user.id, BadgeCredential.org_id == user.org_id)
            .order_by(BadgeCredential.issued_at)
        )
        return [_view(ctx, active, r) for r in rows]


def org_credentials(ctx: AppContext, admin: CurrentUser) -> list[CredentialView]:
    """Admins: every credential the organisation issued."""
    admin.require("admin")
    with ctx.session() as session:
        active = ctx.active_pack(session, admin.org_id).localized()
        rows = session.scalars(
            select(BadgeCredential)
            .where(BadgeCredential.org_id == admin.org_id)
            .order_by(BadgeCredential.issued_at)
        )
        return [_view(ctx, active, r) for r in rows]


def download(ctx: AppContext, user: CurrentUser, credential_id: str) -> dict[str, Any]:
    """The signed credential as JSON, for its learner (or an admin of the organisation)."""
    with ctx.session() as session:
        row = session.get(BadgeCredential, credential_id)
        if row is None or row.org_id != user.org_id or (row.user_id != user.id and user.role != "admin"):
            raise NotFound(_("No such credential."))
        return dict(row.document)


def verification(ctx: AppContext, credential_id: str) -> Verification:
    """Public: the stored credential, whether its proof verifies, and whether it was revoked."""
    with ctx.session() as session:
        row = session.get(BadgeCredential, credential_id)
        if row is None:
            raise NotFound(_("No such credential."))
        document = dict(row.document)
        revoked_at = as_utc(row.revoked_at) if row.revoked_at else None
        reason = row.revocation_reason
    return check(credential_id, document, revoked_at, reason)


def check(
    credential_id: str,
    document: dict[str, Any],
    revoked_at: datetime | None = None,
    reason: str | None = None,
) -> Verification:
    problem = None
    try:
        vc.verify(document)
    except vc.VcError as exc:
        problem = str(exc)
    return Verification(
        id=credential_id,
        verified=problem is None,
        status="revoked" if revoked_at else "active",
        revoked_at=revoked_at,
        revocation_reason=reason,
        problem=problem,
        credential=document,
    )


def revoke(ctx: AppContext, admin: CurrentUser, credential_id: str, reason: str = "") -> CredentialView:
    """Admins of the issuing organisation: revoke a credential (kept, shown as revoked)."""
    admin.require("admin")
    reason = reason.strip()
    if len(reason) > 500:
        raise InvalidInput(_("The reason is too long (at most 500 characters)."))
    with ctx.session() as session:
        row = session.get(BadgeCredential, credential_id)
        if row is None or row.org_id != admin.org_id:
            raise NotFound(_("No such credential."))
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            row.revoked_by = admin.id
            row.revocation_reason = reason or None
            log.info("badges: credential %s revoked by user %s", credential_id, admin.id)
        active = ctx.active_pack(session, admin.org_id).localized()
        return _view(ctx, active, row)

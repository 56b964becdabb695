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

Revocation is published as a W3C Bitstring Status List v1.0 (``interop/status_list.py``): each
credential's ``credentialStatus`` names the organisation's status list credential
(``/badges/status/<organisation>``, public, signed by the same key, valid for a day from each
fetch) and a random index in it; revoking sets the bit, and the verification reads the list,
checks its proof and issuer, and reports the bit.

Where the organisation enables skill badges (``BadgeSettings``), a learner also gets one
credential per skill of their role that they meet (the same rule, ``mastery.targets_met``).
Each achievement links an SVG image made for it (``/badges/images/...``), as OB 3.0's
``Achievement.image``.
"""

from __future__ import annotations

import html
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from learnloop.content.models import LEVEL_MASTERY, Role
from learnloop.errors import InvalidInput, NotFound
from learnloop.i18n import _, get_locale, set_locale
from learnloop.interop import status_list, vc
from learnloop.services.auth import CurrentUser
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.enrolment import current_role
from learnloop.services.mastery import targets_met
from learnloop.store.models import Mastery, Organisation, User, as_utc, utcnow
from learnloop.store.models_interop import BadgeCredential, BadgeIssuerKey, BadgeSettings

log = logging.getLogger(__name__)

CONTEXT = [
    "https://www.w3.org/ns/credentials/v2",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
]
LANGUAGES = ("en", "zh_CN")
#: ``CredentialView.role_id`` of a skill credential: ``skill:<skill id>`` (the API's key of the
#: achievement; stored rows name the skill in ``skill_id`` since migration 0041)
SKILL_PREFIX = "skill:"
#: how long a served status list is valid (a replayed old copy expires)
STATUS_VALID_FOR = timedelta(days=1)


class CredentialView(BaseModel):
    id: str
    url: str
    #: the achievement: a role id, or ``skill:<skill id>`` for a skill credential
    role_id: str
    #: the skill of a skill credential (None for a role credential)
    skill_id: str | None = None
    role_name: str
    issued_at: datetime
    revoked: bool
    revoked_at: datetime | None


class BadgeSettingsView(BaseModel):
    skill_badges: bool


class Verification(BaseModel):
    """What ``/credentials/<id>`` answers: the stored credential and what a check of it found."""

    id: str
    #: the proof verifies against the issuer's did:key with the shipped, pinned contexts
    verified: bool
    #: active | revoked (from the status list where the credential has one)
    status: str
    #: the credential's status list was read, its proof and issuer checked
    status_list_checked: bool = False
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


def _stamp(at: datetime) -> str:
    return as_utc(at).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def status_list_url(ctx: AppContext, org: Organisation) -> str:
    return f"{ctx.settings.public_url.rstrip('/')}/badges/status/{org.slug}"


def image_url(ctx: AppContext, org: Organisation, role_id: str, skill_id: str | None = None) -> str:
    """The image of the role's achievement, or of the skill's where ``skill_id`` is given."""
    kind, ident = ("skill", skill_id) if skill_id is not None else ("role", role_id)
    return f"{ctx.settings.public_url.rstrip('/')}/badges/images/{org.slug}/{kind}/{ident}.svg"


def _names(active: ActivePack, role_id: str | None, skill_id: str | None = None) -> tuple[str, str]:
    """The achievement's name (the role's, or the skill's where ``skill_id`` is given) in
    English and Simplified Chinese (the pack's texts)."""
    zh = active.localized("zh_CN")
    if skill_id is not None:
        return active.pack.skill(skill_id).name, zh.pack.skill(skill_id).name
    role = active.roles[str(role_id)]
    return role.name, zh.roles.get(role.id, role).name


def _skill_criteria(active: ActivePack, skill_id: str, level: int) -> str:
    parts = []
    for locale in LANGUAGES:
        pack = active.localized(locale)

        def text(pack: ActivePack = pack) -> str:
            return _("{skill}: {level} (mastery at least {target:.0%}), met with enough evidence.").format(
                skill=pack.pack.skill(skill_id).name, level=_level_name(level), target=LEVEL_MASTERY[level]
            )

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
    *,
    skill_id: str | None = None,
    status_index: int | None = None,
) -> dict[str, Any]:
    """The unsigned credential: for ``role``, or (``skill_id``) for one skill of it."""
    base = ctx.settings.public_url.rstrip("/")
    en, zh = _names(active, role.id, skill_id)
    names = en if zh == en else f"{en} / {zh}"
    if skill_id is not None:
        skill = active.pack.skill(skill_id)
        description = skill.description or skill.name
        criteria = _skill_criteria(active, skill_id, role.targets[skill_id])
        achievement_id = f"urn:learnloop:achievement:{org.slug}:skill:{skill_id}"
    else:
        description = role.description or role.name
        criteria = _criteria(active, role)
        achievement_id = f"urn:learnloop:achievement:{org.slug}:{role.id}"
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "id": f"{base}/credentials/{credential_id}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": names,
        "issuer": {"id": key_row.did, "type": ["Profile"], "name": org.name},
        "validFrom": _stamp(at),
        "credentialSubject": {
            "id": subject_id(key_row, user_id),
            "type": ["AchievementSubject"],
            "achievement": {
                "id": achievement_id,
                "type": ["Achievement"],
                "achievementType": "Competency",
                "name": names,
                "description": description,
                "criteria": {"narrative": criteria},
                "image": {"id": image_url(ctx, org, role.id, skill_id), "type": "Image", "caption": names},
                "inLanguage": "en",
            },
        },
    }
    if status_index is not None:
        document["credentialStatus"] = status_list.entry(status_list_url(ctx, org), status_index)
    return document


def _existing(session: Session, user_id: int, role_id: str, skill_id: str | None = None) -> str | None:
    """The learner's credential for the role (or for the skill, where ``skill_id`` is given)."""
    achievement = (
        BadgeCredential.skill_id == skill_id if skill_id is not None else BadgeCredential.role_id == role_id
    )
    found = session.scalar(select(BadgeCredential.id).where(BadgeCredential.user_id == user_id, achievement))
    return str(found) if found is not None else None


def _issue(
    session: Session,
    ctx: AppContext,
    active: ActivePack,
    org: Organisation,
    user_id: int,
    role: Role,
    skill_id: str | None = None,
) -> str | None:
    """Sign and store one credential (for the role, or for one skill of it where ``skill_id``
    is given) with a free random status index."""
    signing_key, key_row = _key(session, org.id)
    for _attempt in range(16):
        index = secrets.randbelow(status_list.SIZE)
        taken = session.scalar(
            select(BadgeCredential.id).where(
                BadgeCredential.org_id == org.id, BadgeCredential.status_index == index
            )
        )
        if taken is not None:
            continue
        credential_id = str(uuid.uuid4())
        at = utcnow()
        document = _document(
            ctx, active, org, key_row, credential_id, user_id, role, at, skill_id=skill_id, status_index=index
        )
        signed = vc.sign(
            document,
            signing_key,
            verification_method=f"{key_row.did}#{key_row.did.removeprefix('did:key:')}",
            created=document["validFrom"],
        )
        try:
            with session.begin_nested():
                session.add(
                    BadgeCredential(
                        id=credential_id,
                        org_id=org.id,
                        user_id=user_id,
                        role_id=None if skill_id is not None else role.id,
                        skill_id=skill_id,
                        document=signed,
                        issued_at=at,
                        status_index=index,
                    )
                )
        except IntegrityError:  # issued meanwhile by another transaction, or the index taken
            existing = _existing(session, user_id, role.id, skill_id)
            if existing is not None:
                return existing
            continue
        log.info(
            "badges: credential %s issued (organisation %s, %s)",
            credential_id,
            org.id,
            f"skill {skill_id}" if skill_id is not None else f"role {role.id}",
        )
        return credential_id
    raise RuntimeError("no free status list index was found")


def skill_badges_enabled(session: Session, org_id: int) -> bool:
    row = session.get(BadgeSettings, org_id)
    return bool(row and row.skill_badges)


class BadgeState(NamedTuple):
    """What :func:`issue_if_ready` reads first: the learner's role, its credential's id (None:
    not issued) and whether the organisation enables skill badges."""

    role_id: str | None
    done: str | None
    skills_on: bool


def issue_if_ready(
    session: Session,
    ctx: AppContext,
    active: ActivePack,
    org_id: int,
    user_id: int,
    *,
    known: BadgeState | None = None,
    rows: Mapping[str, Mastery] | None = None,
) -> str | None:
    """In the caller's transaction: the learner's credential for their role when the role is
    ready (issued now if it was not yet); None when no role or not ready. Where the organisation
    enables skill badges, also a credential for each target skill of the role that is met.
    ``known``: the state read already in this transaction (``answer_hooks.probe``); ``rows``:
    the learner's mastery rows, when the caller holds them (after an answer)."""
    if known is None:
        role_id = current_role(session, user_id)
        role = active.roles.get(role_id) if role_id else None
        if role is None:
            return None
        done = _existing(session, user_id, role.id)
        skills_on = skill_badges_enabled(session, org_id)
    else:
        role = active.roles.get(known.role_id) if known.role_id else None
        if role is None:
            return None
        done, skills_on = known.done, known.skills_on
    if done is not None and not skills_on:
        return done
    skill_done: set[str] = set()
    if skills_on:
        skill_done = {
            str(k)
            for k in session.scalars(
                select(BadgeCredential.skill_id).where(
                    BadgeCredential.user_id == user_id, BadgeCredential.skill_id.is_not(None)
                )
            )
        }
        if done is not None and set(role.targets) <= skill_done:
            return done
    targets = {s: LEVEL_MASTERY[level] for s, level in role.targets.items()}
    met = targets_met(session, ctx.settings, active.items_by_skill, user_id, targets, utcnow(), rows=rows)
    if not targets or (not met and done is None):
        return done
    org = session.get(Organisation, org_id)
    user = session.get(User, user_id)
    if org is None or user is None or user.org_id != org_id:
        raise InvalidInput(_("No such learner in this organisation."))
    if skills_on:
        for skill_id in sorted(set(met) - skill_done):
            _issue(session, ctx, active, org, user_id, role, skill_id)
    if done is not None:
        return done
    if len(met) != len(targets):
        return None
    return _issue(session, ctx, active, org, user_id, role)


def check_now(ctx: AppContext, user: CurrentUser) -> str | None:
    """Issue the caller's credential if their role is ready (e.g. after the rules changed)."""
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id)
        return issue_if_ready(session, ctx, active, user.org_id, user.id)


def _view(ctx: AppContext, active: ActivePack, row: BadgeCredential) -> CredentialView:
    if row.skill_id is not None:
        key = SKILL_PREFIX + row.skill_id
        name = active.pack.skill(row.skill_id).name if row.skill_id in active.skills else row.skill_id
    else:
        key = str(row.role_id)
        role = active.roles.get(key)
        name = role.name if role else key
    return CredentialView(
        id=row.id,
        url=f"{ctx.settings.public_url.rstrip('/')}/credentials/{row.id}",
        role_id=key,
        skill_id=row.skill_id,
        role_name=name,
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
    """Public: the stored credential, whether its proof verifies, and whether it was revoked
    (read from the organisation's status list where the credential names one)."""
    with ctx.session() as session:
        row = session.get(BadgeCredential, credential_id)
        if row is None:
            raise NotFound(_("No such credential."))
        document = dict(row.document)
        revoked_at = as_utc(row.revoked_at) if row.revoked_at else None
        reason = row.revocation_reason
    return check(credential_id, document, revoked_at, reason, fetch=lambda url: local_status_list(ctx, url))


def check(
    credential_id: str,
    document: dict[str, Any],
    revoked_at: datetime | None = None,
    reason: str | None = None,
    fetch: Callable[[str], dict[str, Any]] | None = None,
) -> Verification:
    """Check the proof, and with ``fetch`` (a status list credential by URL) the status."""
    problem = None
    try:
        vc.verify(document)
    except vc.VcError as exc:
        problem = str(exc)
    listed: bool | None = None
    if fetch is not None and problem is None:
        try:
            listed = status_list.is_revoked(document, fetch)
        except (status_list.StatusError, NotFound) as exc:
            problem = str(exc)
    revoked = bool(listed) if listed is not None else revoked_at is not None
    return Verification(
        id=credential_id,
        verified=problem is None,
        status="revoked" if revoked else "active",
        status_list_checked=listed is not None,
        revoked_at=revoked_at,
        revocation_reason=reason,
        problem=problem,
        credential=document,
    )


def _org_by_slug(session: Session, slug: str) -> Organisation:
    org = session.scalar(select(Organisation).where(Organisation.slug == slug[:80]))
    if org is None:
        raise NotFound(_("No such status list."))
    return org


def status_list_credential(ctx: AppContext, slug: str) -> dict[str, Any]:
    """Public: the organisation's Bitstring Status List credential, signed by its issuer key,
    with the bits of its revoked credentials set."""
    with ctx.session() as session:
        org = _org_by_slug(session, slug)
        signing_key, key_row = _key(session, org.id)
        revoked = session.scalars(
            select(BadgeCredential.status_index).where(
                BadgeCredential.org_id == org.id,
                BadgeCredential.revoked_at.is_not(None),
                BadgeCredential.status_index.is_not(None),
            )
        )
        now = utcnow()
        document = status_list.list_credential(
            status_list_url(ctx, org),
            key_row.did,
            [int(i) for i in revoked if i is not None],
            _stamp(now),
            _stamp(now + STATUS_VALID_FOR),
        )
        return vc.sign(
            document,
            signing_key,
            verification_method=f"{key_row.did}#{key_row.did.removeprefix('did:key:')}",
            created=document["validFrom"],
        )


def local_status_list(ctx: AppContext, url: str) -> dict[str, Any]:
    """The status list at ``url`` when it is one this site serves (nothing is fetched)."""
    prefix = f"{ctx.settings.public_url.rstrip('/')}/badges/status/"
    if not url.startswith(prefix) or "/" in url[len(prefix) :]:
        raise status_list.StatusError("the status list is not one this site serves")
    return status_list_credential(ctx, url[len(prefix) :])


def set_skill_badges(ctx: AppContext, admin: CurrentUser, enabled: bool) -> BadgeSettingsView:
    """Admins: whether learners also get a credential for each skill of their role they meet."""
    admin.require("admin")
    with ctx.session() as session:
        row = session.get(BadgeSettings, admin.org_id)
        if row is None:
            row = BadgeSettings(org_id=admin.org_id, skill_badges=enabled)
            session.add(row)
        row.skill_badges = enabled
        row.updated_at = utcnow()
        return BadgeSettingsView(skill_badges=enabled)


def badge_settings(ctx: AppContext, admin: CurrentUser) -> BadgeSettingsView:
    admin.require("admin")
    with ctx.session() as session:
        return BadgeSettingsView(skill_badges=skill_badges_enabled(session, admin.org_id))


def badge_image(ctx: AppContext, slug: str, kind: str, ident: str) -> str:
    """Public: the SVG image of an achievement (a role or a skill of the organisation's pack),
    with its name in English and Simplified Chinese."""
    with ctx.session() as session:
        org = _org_by_slug(session, slug)
        active = ctx.active_pack(session, org.id)
        if (kind == "skill" and ident not in active.skills) or (kind == "role" and ident not in active.roles):
            raise NotFound(_("No such achievement."))
        if kind not in ("skill", "role"):
            raise NotFound(_("No such achievement."))
        en, zh = _names(active, ident if kind == "role" else None, ident if kind == "skill" else None)
    return _svg(en, zh, kind, org.name)


def _svg(en: str, zh: str, kind: str, org_name: str) -> str:
    colour = "#1f6f8b" if kind == "role" else "#4a7c3a"
    labels = [_in_locale(loc, lambda: _("Role") if kind == "role" else _("Skill")) for loc in LANGUAGES]
    label = " \u00b7 ".join(dict.fromkeys(labels))

    def line(text: str, y: int, size: int, weight: str = "normal") -> str:
        short = text if len(text) <= 26 else text[:25] + "\u2026"
        return (
            f'<text x="128" y="{y}" font-size="{size}" font-weight="{weight}" text-anchor="middle" '
            f'fill="#ffffff">{html.escape(short)}</text>'
        )

    lines = [line(label, 78, 14, "bold"), line(en, 124, 18, "bold")]
    if zh != en:
        lines.append(line(zh, 150, 16))
    lines.append(line(org_name, 196, 12))
    title = html.escape(en if zh == en else f"{en} / {zh}")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256" '
        f'role="img" aria-label="{title}"><title>{title}</title>'
        f'<circle cx="128" cy="128" r="124" fill="{colour}" stroke="#f2c14e" stroke-width="8"/>'
        '<circle cx="128" cy="128" r="108" fill="none" stroke="#ffffff" stroke-opacity="0.5" '
        'stroke-width="2"/>' + "".join(lines) + "</svg>"
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

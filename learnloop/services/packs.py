"""Importing and exporting content packs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import select, update

from learnloop.content.loader import load_pack, pack_fingerprint, write_pack
from learnloop.content.models import Pack
from learnloop.content.translations import fallback_stats, missing_texts
from learnloop.errors import NotFound
from learnloop.i18n import _
from learnloop.services import xapi_outbox
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import ContentPack


@dataclass
class PackSummary:
    pack_id: str
    version: str
    fingerprint: str
    skills: int
    roles: int
    items: int
    lessons: int
    changed: bool
    #: language -> number of base texts without a translation (the base language is complete)
    untranslated: dict[str, int] = field(default_factory=dict)


def _summary(pack: Pack, fingerprint: str, changed: bool) -> PackSummary:
    return PackSummary(
        pack.meta.id,
        pack.meta.version,
        fingerprint,
        len(pack.skills),
        len(pack.roles),
        len(pack.items),
        len(pack.lessons),
        changed,
        {
            lang: sum(len(m.fields) for m in missing_texts(pack, overlay))
            for lang, overlay in pack.translations.items()
        },
    )


def import_pack(ctx: AppContext, path: str | Path) -> PackSummary:
    """Validate the pack folder fully, then make it the active pack in one transaction.

    Raises :class:`learnloop.content.loader.PackError` listing every problem; in that case
    nothing is written.
    """
    pack = load_pack(path)
    return activate_pack(ctx, pack)


def activate_pack(ctx: AppContext, pack: Pack) -> PackSummary:
    fingerprint = pack_fingerprint(pack)
    with ctx.session() as session:
        current = (
            session.execute(
                select(ContentPack).where(ContentPack.is_active.is_(True)).order_by(ContentPack.id.desc())
            )
            .scalars()
            .first()
        )
        if current is not None and current.fingerprint == fingerprint:
            return _summary(pack, fingerprint, changed=False)
        session.execute(update(ContentPack).values(is_active=False))
        session.add(
            ContentPack(
                pack_id=pack.meta.id,
                version=pack.meta.version,
                fingerprint=fingerprint,
                document=pack.model_dump(mode="json"),
                is_active=True,
            )
        )
    return _summary(pack, fingerprint, changed=True)


def export_pack(ctx: AppContext, directory: str | Path) -> PackSummary:
    with ctx.session() as session:
        pack = ctx.active_pack(session).pack
    write_pack(pack, directory)
    return _summary(pack, pack_fingerprint(pack), changed=False)


def active_pack_summary(ctx: AppContext) -> PackSummary:
    with ctx.session() as session:
        pack = ctx.active_pack(session).pack
    return _summary(pack, pack_fingerprint(pack), changed=False)


class LessonView(BaseModel):
    id: str
    title: str
    skills: list[str]
    skill_names: list[str]
    minutes: float
    body_markdown: str
    #: the language the title and body are in (the pack's base language where untranslated)
    language: str


def lesson(
    ctx: AppContext, lesson_id: str, language: str | None = None, reader: CurrentUser | None = None
) -> LessonView:
    """A lesson in ``language`` (default: the request's UI language), for pages and the API.
    With ``reader``, the reading is recorded (an xAPI statement where the organisation has an LRS)."""
    with ctx.session() as session:
        active = ctx.active_pack(session).localized(language)
    found = active.lesson(lesson_id)
    if reader is not None:
        xapi_outbox.lesson_read(ctx, reader, found.id)
    untranslated = bool(active.pack.fallback_fields("lesson", found.id))
    return LessonView(
        id=found.id,
        title=found.title,
        skills=list(found.skills),
        skill_names=[active.pack.skill(s).name for s in found.skills],
        minutes=found.minutes,
        body_markdown=found.body,
        language=active.pack.meta.language if untranslated else active.language,
    )


class LessonEntry(BaseModel):
    id: str
    title: str
    minutes: float
    skill_ids: list[str]
    skill_names: list[str]


class LessonDomain(BaseModel):
    domain_id: str
    name: str
    lessons: list[LessonEntry]


def lesson_index(
    ctx: AppContext, language: str | None = None, skill_id: str | None = None
) -> list[LessonDomain]:
    """Every lesson of the active pack in ``language`` (default: the UI language), or only those
    teaching ``skill_id``, grouped by the domain of its first skill, in the pack's order.
    ``NotFound`` for a skill the pack does not have."""
    with ctx.session() as session:
        active = ctx.active_pack(session).localized(language)
    pack = active.pack
    skills = pack.skill_index()
    if skill_id is not None and skill_id not in skills:
        raise NotFound(_("No skill with id %(id)s.") % {"id": skill_id})
    groups: dict[str, list[LessonEntry]] = {d.id: [] for d in pack.meta.domains}
    for found in pack.lessons:
        if skill_id is not None and skill_id not in found.skills:
            continue
        entry = LessonEntry(
            id=found.id,
            title=found.title,
            minutes=found.minutes,
            skill_ids=[s for s in found.skills if s in skills],
            skill_names=[skills[s].name for s in found.skills if s in skills],
        )
        domain = skills[found.skills[0]].domain if found.skills[0] in skills else ""
        groups.setdefault(domain, []).append(entry)
    names = {d.id: d.name for d in pack.meta.domains}
    return [
        LessonDomain(domain_id=d, name=names.get(d, d), lessons=entries)
        for d, entries in groups.items()
        if entries
    ]


class FallbackCount(BaseModel):
    pack_id: str
    version: str
    language: str
    missing_texts: int
    served_with_fallback: int
    examples: list[str]


class TranslationStatus(BaseModel):
    """For admins and operators: how complete each language of the active pack is, and how often
    learners were served base-language text because a translation was missing (this process)."""

    pack_id: str
    version: str
    base_language: str
    declared_languages: list[str]
    untranslated: dict[str, int]
    fallbacks: list[FallbackCount]


def translation_status(ctx: AppContext) -> TranslationStatus:
    with ctx.session() as session:
        pack = ctx.active_pack(session).pack
    summary = _summary(pack, "", changed=False)
    return TranslationStatus(
        pack_id=pack.meta.id,
        version=pack.meta.version,
        base_language=pack.meta.language,
        declared_languages=list(pack.meta.languages),
        untranslated=summary.untranslated,
        fallbacks=[FallbackCount(**vars(s)) for s in fallback_stats() if s.pack_id == pack.meta.id],
    )

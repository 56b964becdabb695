"""Generated items as a use case: draft for a skill, review, and publish approved drafts.

Nothing reaches learners unreviewed: drafts live in ``item_drafts``; approving one validates
it again (the instructor may have edited it) as the pack loader would: the item schema, a
complete translation into every language the pack promises, no ‹marker› left of a template,
nothing copied word for word from the lessons. An approved item belongs to the approving
instructor's organisation only: it is an overlay on the shared pack
(``AppContext.active_pack(session, org_id)``), served to that organisation's learners and
listed in its item bank and reports, never another's. Drafts are de-duplicated against that
organisation's view of the bank and its own pending drafts.

An organisation may require a second reviewer (``OrgAuthoringPolicy.second_review``, set by its
admins): then a draft is published only by an instructor or admin of the organisation who did
not write its current version (``edited_by``, else ``created_by``: who asked for the draft).
A reviewer who wants changes saves them for review (``save_edits``), which makes them the
writer of the new version, so someone else approves it; nobody publishes their own words alone.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, select

from learnloop.content.models import Item, ItemText, Lesson, Pack, Translation
from learnloop.content.translations import missing_texts, overlay_mismatches
from learnloop.errors import Conflict, Forbidden, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.llm.authoring import (
    DRAFT_SCHEMA,
    author_messages,
    copied_from,
    deduplicate,
    offline_drafts,
    parse_drafts,
    placeholders,
    translation_skeleton,
)
from learnloop.llm.gateway import OfflineRoute
from learnloop.llm.providers.base import ChatRequest, Completion
from learnloop.services.auth import CurrentUser
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.llm_usage import gateway_for
from learnloop.store.models import ItemAnalysisRun, ItemDraft, OrgAuthoringPolicy, User, UtcDateTime, utcnow

MAX_DRAFTS = 10


class DraftView(BaseModel):
    id: int
    skill_id: str
    lesson_id: str | None
    item: dict[str, Any]
    item_yaml: str
    provider: str
    nearest_item_id: str | None
    similarity: float
    status: str
    created_at: UtcDateTime
    #: a template draft (no model): the fields where an author still has to write (‹markers›)
    to_complete: list[str] = []
    created_by: int | None = None
    #: who wrote the current version (saved its edits, else asked for the draft) and their name
    writer_id: int | None = None
    writer_name: str = ""
    reviewed_by: int | None = None


class GenerationResult(BaseModel):
    drafts: list[DraftView]
    duplicates_dropped: int
    problems: list[str]
    notices: list[str]


def _view(row: ItemDraft, names: dict[int, str] | None = None) -> DraftView:
    writer = _writer(row)
    return DraftView(
        id=row.id,
        skill_id=row.skill_id,
        lesson_id=row.lesson_id,
        item=row.item,
        item_yaml=yaml.safe_dump(row.item, sort_keys=False, allow_unicode=True, width=100),
        provider=row.provider,
        nearest_item_id=row.nearest_item_id,
        similarity=row.similarity,
        status=row.status,
        created_at=row.created_at,
        to_complete=placeholders(row.item) if row.status == "pending" else [],
        created_by=row.created_by,
        writer_id=writer,
        writer_name=(names or {}).get(writer, ""),
        reviewed_by=row.reviewed_by,
    )


def _writer(row: ItemDraft) -> int:
    """Who wrote the draft's current version: whoever saved its last edits, else who asked for it."""
    return row.edited_by if row.edited_by is not None else row.created_by


def _requires_second_review(session: Any, org_id: int) -> bool:
    policy = session.get(OrgAuthoringPolicy, org_id)
    return bool(policy and policy.second_review)


def second_review_required(ctx: AppContext, user: CurrentUser) -> bool:
    """Whether the user's organisation publishes a draft only after a second person's review."""
    user.require("instructor", "admin")
    with ctx.session() as session:
        return _requires_second_review(session, user.org_id)


def set_second_review(ctx: AppContext, admin: CurrentUser, required: bool) -> bool:
    """Turn the organisation's second-reviewer rule on or off (admins)."""
    admin.require("admin")
    with ctx.session() as session:
        policy = session.get(OrgAuthoringPolicy, admin.org_id)
        if policy is None:
            policy = OrgAuthoringPolicy(org_id=admin.org_id)
            session.add(policy)
        policy.second_review = bool(required)
        policy.updated_at = utcnow()
        session.flush()
        return policy.second_review


def _languages(pack: Pack) -> list[str]:
    """The languages other than the base one that the pack promises complete."""
    return [
        lang
        for lang in dict.fromkeys([*pack.meta.languages, *pack.translations])
        if lang != pack.meta.language
    ]


def _with_translations(pack: Pack, item: Item) -> dict[str, Any]:
    """A new draft's document: the item, and a translation skeleton for each other language."""
    document = item.model_dump(mode="json", exclude_none=True)
    languages = _languages(pack)
    if languages:
        document["translations"] = {lang: translation_skeleton(item, lang) for lang in languages}
    return document


def _related_lessons(active: ActivePack, skill_id: str) -> list[Lesson]:
    """Lessons of the other skills of the skill's domain (distractors for template drafts)."""
    skills = active.pack.skill_index()
    domain = skills[skill_id].domain
    return [
        lesson
        for lesson in active.pack.lessons
        if skill_id not in lesson.skills
        and any(skills[s].domain == domain for s in lesson.skills if s in skills)
    ]


def generate_drafts(ctx: AppContext, user: CurrentUser, skill_id: str, count: int = 3) -> GenerationResult:
    """Draft ``count`` items for a skill from its lessons and queue them for review (instructors)."""
    user.require("instructor")
    if not 1 <= count <= MAX_DRAFTS:
        raise InvalidInput(_("Ask for between 1 and %(n)d drafts.") % {"n": MAX_DRAFTS})
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id)
        skill = active.pack.skill_index().get(skill_id)
        if skill is None:
            raise NotFound(_("No such skill."))
        lessons = active.pack.lessons_for_skill(skill_id)
        if not lessons:
            raise Conflict(_("This skill has no lesson to write items from."))
        related = _related_lessons(active, skill_id)
        pending = [
            Item.model_validate({k: v for k, v in r.item.items() if k != "translations"})
            for r in session.execute(
                select(ItemDraft).where(
                    ItemDraft.org_id == user.org_id,
                    ItemDraft.status == "pending",
                    ItemDraft.skill_id == skill_id,
                )
            ).scalars()
        ]
        # this organisation's bank: the shared items and its own approved ones, never another's
        bank = [*active.items_by_skill.get(skill_id, []), *pending]
    prefix = f"{skill_id}.draft-{utcnow().strftime('%Y%m%d%H%M%S')}"[:70]
    gateway = gateway_for(ctx)
    request = ChatRequest(
        messages=author_messages(skill, lessons, [i.stem for i in bank], count),
        max_tokens=400 * count,
        temperature=0.7,
        json_schema=DRAFT_SCHEMA,
        schema_name="drafts",
    )
    reply = gateway.complete("author", request, org_id=user.org_id, user_id=user.id)
    problems: list[str] = []
    notices: list[str] = []
    if isinstance(reply, OfflineRoute):
        items, provider = offline_drafts(skill, lessons, count, prefix, related), "offline-template"
        notices = [
            *reply.notices,
            _(
                "No language model is configured: the drafts are templates built from the terms of the "
                "lessons. Write every part marked ‹…› before approving."
            ),
        ]
        if not items:
            problems.append(_("The lessons of this skill set no terms in bold to build templates from."))
    else:
        assert isinstance(reply, Completion)
        items, problems = parse_drafts(reply.text, skill_id, prefix)
        provider = f"model:{reply.model}"[:40]
        notices = reply.notices
    embedder = gateway.embedder()
    kept, dropped = deduplicate(items, bank, embedder[0] if embedder else None)
    with ctx.session() as session:
        rows = []
        for draft in kept:
            row = ItemDraft(
                org_id=user.org_id,
                skill_id=skill_id,
                lesson_id=lessons[0].id,
                item=_with_translations(active.pack, draft.item),
                provider=provider,
                nearest_item_id=draft.nearest_item_id,
                similarity=draft.similarity,
                status="pending",
                created_by=user.id,
            )
            session.add(row)
            rows.append(row)
        session.flush()
        return GenerationResult(
            drafts=[_view(r, {user.id: user.name}) for r in rows],
            duplicates_dropped=len(dropped),
            problems=problems,
            notices=notices,
        )


def drafts(ctx: AppContext, user: CurrentUser, status: str = "pending") -> list[DraftView]:
    user.require("instructor")
    if status not in ("pending", "approved", "rejected"):
        raise InvalidInput(_("status must be pending, approved or rejected"))
    with ctx.session() as session:
        rows = (
            session.execute(
                select(ItemDraft)
                .where(ItemDraft.org_id == user.org_id, ItemDraft.status == status)
                .order_by(ItemDraft.id.desc())
                .limit(200)
            )
            .scalars()
            .all()
        )
        writers = {_writer(r) for r in rows}
        names = dict(
            session.execute(
                select(User.id, User.name).where(User.id.in_(writers), User.org_id == user.org_id)
            ).all()
        )
        return [_view(r, names) for r in rows]


def _own_draft(session: Any, user: CurrentUser, draft_id: int) -> ItemDraft:
    row = session.get(ItemDraft, draft_id)
    if row is None or row.org_id != user.org_id:
        raise NotFound(_("No such draft."))
    if row.status != "pending":
        raise Conflict(_("This draft has already been reviewed."))
    return row


def _check_draft(active: ActivePack, document: dict[str, Any], lesson_texts: list[str]) -> Item:
    """The item of an approved draft, checked as the pack loader checks the default pack."""
    document = dict(document)
    translations = document.pop("translations", None) or {}
    try:
        item = Item.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(
            _("The item does not fit the pack schema."),
            details=[f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()],
        ) from None
    unknown = [s for s in item.skills if s not in active.pack.skill_index()]
    if unknown:
        raise InvalidInput(_("The item names unknown skills."), details=unknown)
    if not isinstance(translations, dict):
        raise InvalidInput(_("translations must map a language to the item's texts in it."))
    texts: dict[str, ItemText] = {}
    problems: list[str] = []
    for lang, text in translations.items():
        try:
            texts[str(lang)] = ItemText.model_validate(text)
        except ValidationError as exc:
            problems += [
                f"translations.{lang}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            ]
    if problems:
        raise InvalidInput(_("A translation of the item does not fit the pack schema."), details=problems)
    alone = Pack.model_construct(
        meta=active.pack.meta, skills=active.pack.skills, roles=[], items=[item], lessons=[], translations={}
    )
    for lang in _languages(active.pack):
        overlay = Translation(items={item.id: texts[lang]} if lang in texts else {})
        problems += [f"translations.{lang}: {m.message}" for m in overlay_mismatches(alone, overlay)]
        problems += [
            f"translations.{lang}.{field}: " + _("missing")
            for m in missing_texts(alone, overlay)
            if m.kind == "item"
            for field in m.fields
        ]
    if problems:
        raise InvalidInput(
            _("Every language the pack promises needs the item's texts: complete the translations."),
            details=problems,
        )
    marked = placeholders({**document, "translations": translations})
    if marked:
        raise InvalidInput(
            _("Write every part marked ‹…› before approving: the draft is a template."), details=marked
        )
    copied = copied_from({**document, "translations": translations}, lesson_texts)
    if copied:
        raise InvalidInput(
            _("Parts of the item copy the lesson word for word; write them in your own words."),
            details=[f"{path}: “{words}”" for path, words in copied],
        )
    return item


def _edited(row: ItemDraft, edited_yaml: str | None) -> dict[str, Any]:
    """The draft's document as the instructor edited it (the stored one when nothing was sent)."""
    if edited_yaml is None or not edited_yaml.strip():
        return dict(row.item)
    try:
        edited = yaml.safe_load(edited_yaml)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = _(" (line %(line)d)") % {"line": mark.line + 1} if mark is not None else ""
        raise InvalidInput(_("The edited item is not valid YAML.") + where) from None
    if not isinstance(edited, dict):
        raise InvalidInput(_("The edited item must be a YAML mapping."))
    return edited


def _lesson_texts(active: ActivePack, skill_id: str) -> list[str]:
    """The titles and bodies of the skill's lessons in every language (not to be copied)."""
    return [
        text
        for lesson in active.pack.lessons_for_skill(skill_id)
        for language in (None, *_languages(active.pack))
        for localized in [active.localized(language).pack.lesson(lesson.id) if language else lesson]
        for text in (localized.title, localized.body)
    ]


def _same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "id"} == {k: v for k, v in b.items() if k != "id"}


def save_edits(ctx: AppContext, user: CurrentUser, draft_id: int, edited_yaml: str) -> DraftView:
    """Save an instructor's edits to a pending draft for review: checked as an approval is (a
    saved version is ready to publish), and the saver becomes the writer of this version, whom
    a required second reviewer must differ from. Saving again what the same person saved last is
    a no-op that answers the draft as it is (a repeated request, e.g. a retry or a double click)."""
    user.require("instructor")
    with ctx.session() as session:
        row = _own_draft(session, user, draft_id)
        document = _edited(row, edited_yaml)
        if _same_content(document, row.item):
            if row.edited_by == user.id:
                return _view(row, {user.id: user.name})
            raise InvalidInput(_("Nothing was changed: edit the item before saving it for review."))
        active = ctx.active_pack(session, user.org_id)
        _check_draft(
            active,
            {**document, "id": f"{row.skill_id}.authored-{row.id}"},
            _lesson_texts(active, row.skill_id),
        )
        row.item = {**document, "id": row.item.get("id", document.get("id"))}
        row.edited_by = user.id
        session.flush()
        return _view(row, {user.id: user.name})


def approve(ctx: AppContext, user: CurrentUser, draft_id: int, edited_yaml: str | None = None) -> DraftView:
    """Publish a draft (as edited by the instructor) to the instructor's organisation: its
    learners are served it from now on, no other organisation's are. Where the organisation
    requires a second reviewer, the approver must not be the writer of the draft's version and
    approves it unchanged (changes are saved for review first, ``save_edits``): 403 otherwise."""
    user.require("instructor")
    with ctx.session() as session:
        row = _own_draft(session, user, draft_id)
        document = _edited(row, edited_yaml)
        if _requires_second_review(session, user.org_id):
            if _writer(row) == user.id:
                raise Forbidden(
                    _(
                        "Your organisation requires a second reviewer: you wrote this version of the "
                        "draft, so another instructor or admin of your organisation must approve it."
                    )
                )
            if not _same_content(document, row.item):
                raise Forbidden(
                    _(
                        "Your organisation requires a second reviewer: save your changes for review "
                        "(someone else then approves them), or approve the draft as it is."
                    )
                )
        document["id"] = f"{row.skill_id}.authored-{row.id}"
        active = ctx.active_pack(session, user.org_id)
        if document["id"] in active.items:
            raise Conflict(_("An item with this id is already in the pack."))
        item = _check_draft(active, document, _lesson_texts(active, row.skill_id))
        stored = item.model_dump(mode="json", exclude_none=True)
        if document.get("translations"):
            stored["translations"] = document["translations"]
        row.item = stored
        row.status = "approved"
        row.reviewed_by = user.id
        row.reviewed_at = utcnow()
        row.pack_row_id = active.row_id
        # the organisation's item analysis lists the new item from now on
        session.execute(delete(ItemAnalysisRun).where(ItemAnalysisRun.org_id == user.org_id))
        session.flush()
        return _view(row)


def reject(ctx: AppContext, user: CurrentUser, draft_id: int) -> DraftView:
    user.require("instructor")
    with ctx.session() as session:
        row = _own_draft(session, user, draft_id)
        row.status = "rejected"
        row.reviewed_by = user.id
        row.reviewed_at = utcnow()
        session.flush()
        return _view(row)

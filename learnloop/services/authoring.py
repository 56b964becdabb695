"""Generated items as a use case: draft for a skill, review, and publish approved drafts.

Nothing reaches learners unreviewed: drafts live in ``item_drafts``; approving one validates
it again (the instructor may have edited it) and activates a new version of the pack with
the item added (``packs.activate_pack``), so the practice loop sees it from then on.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from learnloop.content.models import Item, Pack
from learnloop.errors import Conflict, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.llm.authoring import DRAFT_SCHEMA, author_messages, deduplicate, offline_drafts, parse_drafts
from learnloop.llm.gateway import OfflineRoute
from learnloop.llm.providers.base import ChatRequest, Completion
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.llm_usage import gateway_for
from learnloop.services.packs import activate_pack
from learnloop.store.models import ItemDraft, UtcDateTime, utcnow

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


class GenerationResult(BaseModel):
    drafts: list[DraftView]
    duplicates_dropped: int
    problems: list[str]
    notices: list[str]


def _view(row: ItemDraft) -> DraftView:
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
    )


def generate_drafts(ctx: AppContext, user: CurrentUser, skill_id: str, count: int = 3) -> GenerationResult:
    """Draft ``count`` items for a skill from its lessons and queue them for review (instructors)."""
    user.require("instructor")
    if not 1 <= count <= MAX_DRAFTS:
        raise InvalidInput(_("Ask for between 1 and %(n)d drafts.") % {"n": MAX_DRAFTS})
    with ctx.session() as session:
        active = ctx.active_pack(session)
        skill = active.pack.skill_index().get(skill_id)
        if skill is None:
            raise NotFound(_("No such skill."))
        lessons = active.pack.lessons_for_skill(skill_id)
        if not lessons:
            raise Conflict(_("This skill has no lesson to write items from."))
        pending = [
            Item.model_validate(r.item)
            for r in session.execute(
                select(ItemDraft).where(ItemDraft.status == "pending", ItemDraft.skill_id == skill_id)
            ).scalars()
        ]
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
        items, provider, notices = offline_drafts(skill, lessons, count, prefix), "offline", reply.notices
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
                item=draft.item.model_dump(mode="json", exclude_none=True),
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
            drafts=[_view(r) for r in rows],
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
        return [_view(r) for r in rows]


def _own_draft(session: Any, user: CurrentUser, draft_id: int) -> ItemDraft:
    row = session.get(ItemDraft, draft_id)
    if row is None or row.org_id != user.org_id:
        raise NotFound(_("No such draft."))
    if row.status != "pending":
        raise Conflict(_("This draft has already been reviewed."))
    return row


def _next_version(version: str) -> str:
    match = re.match(r"^(.*)-a(\d+)$", version)
    base, n = (match.group(1), int(match.group(2))) if match else (version, 0)
    return f"{base[:30]}-a{n + 1}"


def approve(ctx: AppContext, user: CurrentUser, draft_id: int, edited_yaml: str | None = None) -> DraftView:
    """Publish a draft (as edited by the instructor) in a new version of the active pack."""
    user.require("instructor")
    with ctx.session() as session:
        row = _own_draft(session, user, draft_id)
        document = dict(row.item)
        if edited_yaml is not None and edited_yaml.strip():
            try:
                edited = yaml.safe_load(edited_yaml)
            except yaml.YAMLError:
                raise InvalidInput(_("The edited item is not valid YAML.")) from None
            if not isinstance(edited, dict):
                raise InvalidInput(_("The edited item must be a YAML mapping."))
            document = edited
        document["id"] = f"{row.skill_id}.authored-{row.id}"
        try:
            item = Item.model_validate(document)
        except ValidationError as exc:
            raise InvalidInput(
                _("The item does not fit the pack schema."),
                details=[f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()],
            ) from None
        active = ctx.active_pack(session)
        unknown = [s for s in item.skills if s not in active.pack.skill_index()]
        if unknown:
            raise InvalidInput(_("The item names unknown skills."), details=unknown)
        if item.id in active.items:
            raise Conflict(_("An item with this id is already in the pack."))
        pack_document = active.pack.model_dump(mode="json")
    pack_document["items"].append(item.model_dump(mode="json", exclude_none=True))
    pack_document["meta"]["version"] = _next_version(pack_document["meta"]["version"])
    pack = Pack.model_validate(pack_document)
    activate_pack(ctx, pack)
    with ctx.session() as session:
        row = _own_draft(session, user, draft_id)
        row.item = item.model_dump(mode="json", exclude_none=True)
        row.status = "approved"
        row.reviewed_by = user.id
        row.reviewed_at = utcnow()
        row.pack_row_id = ctx.active_pack(session).row_id
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

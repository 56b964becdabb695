"""The item bank as instructors see it: every item with its key and basic statistics."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import Integer, cast, func, select

from learnloop.errors import InvalidInput
from learnloop.i18n import _
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import Response

T = TypeVar("T")


#: rows on one page of the item bank or the item analysis
PER_PAGE = 50
ITEM_KINDS = ("choice", "numeric", "text", "code")


class ItemRow(BaseModel):
    id: str
    kind: str
    skill: str
    difficulty: float
    attempts: int
    p_correct: float | None
    #: the skill's name in the UI language
    skill_name: str = ""


class ItemFilter(BaseModel):
    """What the item bank and the item analysis are narrowed to (empty: everything)."""

    #: words that must all occur in the item's id, stem or options (either language)
    q: str = Field(default="", max_length=200)
    skill: str = Field(default="", max_length=80)
    kind: str = Field(default="", max_length=20)
    page: int = Field(default=1, ge=1, le=100_000)

    def is_set(self) -> bool:
        return bool(self.q.strip() or self.skill or self.kind)


class ItemPage(BaseModel):
    rows: list[ItemRow]
    #: items that match the filter, on all pages
    total: int
    #: items in the bank
    bank: int
    page: int
    pages: int
    #: (id, name) of every skill, and the kinds, for the filter's menus
    skills: list[tuple[str, str]]
    kinds: list[str]


def page_of(rows: list[T], page: int, per_page: int = PER_PAGE) -> tuple[list[T], int, int]:
    """One page of ``rows``: the rows, the page (clamped to the last) and the number of pages."""
    pages = max(1, -(-len(rows) // per_page))
    page = min(max(page, 1), pages)
    return rows[(page - 1) * per_page : page * per_page], page, pages


def matching_ids(ctx: AppContext, user: CurrentUser, flt: ItemFilter) -> list[str]:
    """Ids of the organisation's items that match ``flt``, in pack order."""
    user.require("instructor", "admin")
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id)
    if flt.skill and flt.skill not in active.skills:
        raise InvalidInput(_("No skill with id %(id)s.") % {"id": flt.skill})
    if flt.kind and flt.kind not in ITEM_KINDS:
        raise InvalidInput(_("Unknown item kind; use one of: %(kinds)s") % {"kinds": ", ".join(ITEM_KINDS)})
    words = flt.q.casefold().split()
    local = active.localized()
    out = []
    for item in active.pack.items:
        if (flt.skill and flt.skill not in item.skills) or (flt.kind and item.kind != flt.kind):
            continue
        if words:
            shown = local.items.get(item.id, item)
            text = " ".join(
                [
                    item.id,
                    item.stem,
                    shown.stem,
                    *(item.options or {}).values(),
                    *(shown.options or {}).values(),
                ]
            ).casefold()
            if not all(w in text for w in words):
                continue
        out.append(item.id)
    return out


def item_page(ctx: AppContext, user: CurrentUser, flt: ItemFilter) -> ItemPage:
    """One page of the item bank narrowed by ``flt`` (a 10,000-item bank stays one page long)."""
    ids = matching_ids(ctx, user, flt)
    rows = {r.id: r for r in item_rows(ctx, user)}
    selected, page, pages = page_of([rows[i] for i in ids if i in rows], flt.page)
    with ctx.session() as session:
        skills = [(s.id, s.name) for s in ctx.active_pack(session, user.org_id).localized().pack.skills]
    return ItemPage(
        rows=selected,
        total=len(ids),
        bank=len(rows),
        page=page,
        pages=pages,
        skills=skills,
        kinds=list(ITEM_KINDS),
    )


def item_rows(ctx: AppContext, user: CurrentUser) -> list[ItemRow]:
    user.require("instructor", "admin")
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id)
        stats = {
            item_id: (n, right)
            for item_id, n, right in session.execute(
                select(Response.item_id, func.count(), func.sum(cast(Response.correct, Integer)))
                .where(Response.org_id == user.org_id)
                .group_by(Response.item_id)
            )
        }
    names = {s.id: s.name for s in active.localized().pack.skills}
    rows = []
    for item in active.pack.items:
        n, right = stats.get(item.id, (0, 0))
        rows.append(
            ItemRow(
                id=item.id,
                kind=item.kind,
                skill=item.skills[0],
                skill_name=names.get(item.skills[0], item.skills[0]),
                difficulty=item.difficulty,
                attempts=n,
                p_correct=(right or 0) / n if n else None,
            )
        )
    return rows


def item_detail(ctx: AppContext, user: CurrentUser, item_id: str) -> dict[str, Any]:
    """The full item, key and tests included (instructors and admins only)."""
    user.require("instructor", "admin")
    with ctx.session() as session:
        item = ctx.active_pack(session, user.org_id).item(item_id)
    return item.model_dump(mode="json", exclude_none=True)


class ItemPreview(BaseModel):
    """An item as a learner sees it in the UI language, with its key, for its page."""

    #: the item's texts in the UI language (its base-language texts where untranslated)
    item: dict[str, Any]
    #: the item as stored, in the pack's base language
    source: dict[str, Any]
    skill_names: dict[str, str]
    #: drafted and approved in the viewer's organisation (not part of the shared pack)
    authored_here: bool


def item_preview(ctx: AppContext, user: CurrentUser, item_id: str) -> ItemPreview:
    user.require("instructor", "admin")
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id)
        base = active.item(item_id)
        local = active.localized()
        return ItemPreview(
            item=local.item(item_id).model_dump(mode="json", exclude_none=True),
            source=base.model_dump(mode="json", exclude_none=True),
            skill_names={s: local.pack.skill(s).name for s in base.skills if s in local.skills},
            authored_here=item_id in active.authored,
        )

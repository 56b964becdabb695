"""The item bank as instructors see it: every item with its key and basic statistics."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import Integer, cast, func, select

from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.models import Response


class ItemRow(BaseModel):
    id: str
    kind: str
    skill: str
    difficulty: float
    attempts: int
    p_correct: float | None


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
    rows = []
    for item in active.pack.items:
        n, right = stats.get(item.id, (0, 0))
        rows.append(
            ItemRow(
                id=item.id,
                kind=item.kind,
                skill=item.skills[0],
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

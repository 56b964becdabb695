"""One skill as its learner sees it: mastery with its evidence, the lessons, a due review, the
prerequisites and the latest answers on it (``/skills/{id}``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select

from learnloop.errors import NotFound
from learnloop.i18n import _
from learnloop.services import guidance, practice
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.store.grades import counted_correct, with_decisions
from learnloop.store.models import Response, as_utc

#: answers on the skill shown, newest first; and how far back in the learner's log to look
RECENT = 10
LOOK_BACK = 500


class LessonLink(BaseModel):
    id: str
    title: str
    minutes: float


class SkillAnswer(BaseModel):
    item_id: str
    stem: str
    kind: str
    #: practice | check
    context: str
    correct: bool
    at: datetime


class SkillPage(BaseModel):
    skill_id: str
    name: str
    description: str
    domain_name: str
    #: the skill on the learner's skill map (None: no role chosen yet)
    status: practice.SkillStatus | None
    #: part of the learner's target role (or a prerequisite of it)
    in_role: bool
    prerequisites: list[tuple[str, str]]
    lessons: list[LessonLink]
    #: how likely the learner still recalls it, when its review is due (else None)
    due_recall: float | None
    practice_items: int
    recent: list[SkillAnswer]


def skill_page(ctx: AppContext, user: CurrentUser, skill_id: str) -> SkillPage:
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id)
        local = active.localized()
        if skill_id not in local.skills:
            raise NotFound(_("No skill with id %(id)s.") % {"id": skill_id})
        skill = local.pack.skill(skill_id)
        domains = {d.id: d.name for d in local.pack.meta.domains}
        rows = session.execute(
            with_decisions(
                select(
                    Response.item_id,
                    Response.skills,
                    Response.kind,
                    Response.context,
                    counted_correct(),
                    Response.created_at,
                ).where(Response.user_id == user.id)
            )
            .order_by(Response.id.desc())
            .limit(LOOK_BACK)
        ).all()
    recent = []
    for item_id, skills, kind, context, correct, at in rows:
        if skill_id not in (skills or []):
            continue
        item = local.items.get(item_id)
        stem = item.stem if item is not None else item_id
        recent.append(
            SkillAnswer(
                item_id=item_id,
                stem=stem if len(stem) <= 140 else stem[:139] + "…",
                kind=kind,
                context=context,
                correct=bool(correct),
                at=as_utc(at),
            )
        )
        if len(recent) >= RECENT:
            break
    status = None
    skill_map = practice.skill_map(ctx, user.id)
    for domain in skill_map.domains:
        for s in domain.skills:
            if s.skill_id == skill_id:
                status = s
    due = next((d for d in guidance.due_reviews(ctx, user) if d.skill_id == skill_id), None)
    return SkillPage(
        skill_id=skill_id,
        name=skill.name,
        description=skill.description,
        domain_name=domains.get(skill.domain, skill.domain),
        status=status,
        in_role=status is not None and skill_map.role_id is not None,
        prerequisites=[(p, local.pack.skill(p).name) for p in skill.prerequisites if p in local.skills],
        lessons=[
            LessonLink(id=x.id, title=x.title, minutes=x.minutes)
            for x in local.pack.lessons_for_skill(skill_id)
        ],
        due_recall=None if due is None else due.retrievability,
        practice_items=len(active.items_by_skill.get(skill_id, [])),
        recent=recent,
    )

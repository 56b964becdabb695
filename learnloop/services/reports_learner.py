"""A learner's progress: mastery over time, mastery per domain against the target role,
due reviews and credentials.

A learner sees their own report; their manager and admins see it only when the learner
consented (``reports.may_see_person``); anyone else is told there is no such learner.
A credential is a target of the learner's role that is met: earned when mastery last
crossed the target, kept while it stays met.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from learnloop.errors import NotFound
from learnloop.services.auth import CurrentUser
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.enrolment import current_role
from learnloop.services.mastery import load_model, mastery_of
from learnloop.services.reports import Person, may_see_person, people_of_org
from learnloop.store.models import MasteryHistory, Response, User, UtcDateTime, as_utc

log = logging.getLogger("learnloop.reports")


class TimelinePoint(BaseModel):
    day: str  # ISO date
    mastery: float


class DomainTimeline(BaseModel):
    domain_id: str
    name: str
    points: list[TimelinePoint]


class DomainStanding(BaseModel):
    domain_id: str
    name: str
    skills: int
    mastery: float
    target: float | None


class Credential(BaseModel):
    skill_id: str
    skill_name: str
    level: int
    target: float
    mastery: float
    earned_at: UtcDateTime | None


class DueReview(BaseModel):
    item_id: str | None
    skill_id: str | None
    skill_name: str | None
    due_at: UtcDateTime | None
    #: predicted chance of recalling the skill now, when the scheduler says
    retrievability: float | None


class LearnerReport(BaseModel):
    user_id: int
    name: str
    is_self: bool
    role_id: str | None
    role_name: str | None
    answers: int
    targets_met: int
    targets_total: int
    role_ready: bool
    timeline: list[DomainTimeline]
    domains: list[DomainStanding]
    credentials: list[Credential]
    #: False when the review scheduler is not installed (the page leaves the section out)
    reviews_available: bool
    reviews: list[DueReview]


def learner_report(ctx: AppContext, viewer: CurrentUser, user_id: int | None = None) -> LearnerReport:
    """The viewer's own report, or a member's whose figures the viewer may see."""
    target_id = viewer.id if user_id is None else user_id
    with ctx.session() as session:
        active = ctx.active_pack(session, viewer.org_id)
        person = _person(session, active, viewer, target_id)
        model = load_model(session, viewer.org_id)
        rows = mastery_of(session, person.id)
        mastery = {
            s.id: (rows[s.id].p_known if s.id in rows else model.prior(s.id)) for s in active.pack.skills
        }
        role_id = current_role(session, person.id)
        role = active.roles.get(role_id) if role_id else None
        history: list[Any] = list(
            session.execute(
                select(MasteryHistory.skill_id, MasteryHistory.p_known, MasteryHistory.created_at)
                .where(MasteryHistory.user_id == person.id)
                .order_by(MasteryHistory.created_at, MasteryHistory.id)
            )
        )
        answers = (
            session.scalar(select(func.count()).select_from(Response).where(Response.user_id == person.id))
            or 0
        )
    relevant = sorted(active.role_skills(role)) if role else sorted({s for s, _, _ in history})
    priors = {s.id: model.prior(s.id) for s in active.pack.skills}
    targets = role.mastery_targets() if role else {}
    timeline, earned = _replay(active, history, relevant, priors, targets)
    credentials = [
        Credential(
            skill_id=s,
            skill_name=active.pack.skill(s).name,
            level=role.targets[s],
            target=t,
            mastery=round(mastery[s], 4),
            earned_at=earned.get(s),
        )
        for s, t in targets.items()
        if role is not None and mastery.get(s, 0.0) >= t
    ]
    credentials.sort(key=lambda c: (c.earned_at is None, c.earned_at or datetime.min, c.skill_id))
    available, reviews = _due_reviews(ctx, viewer, active) if person.id == viewer.id else (False, [])
    return LearnerReport(
        user_id=person.id,
        name=person.name,
        is_self=person.id == viewer.id,
        role_id=role.id if role else None,
        role_name=role.name if role else None,
        answers=answers,
        targets_met=len(credentials),
        targets_total=len(targets),
        role_ready=bool(targets) and len(credentials) == len(targets),
        timeline=timeline,
        domains=_domains(active, relevant, mastery, targets if role else None, ctx.settings.unlock_mastery),
        credentials=credentials,
        reviews_available=available,
        reviews=reviews,
    )


def _person(session: Session, active: ActivePack, viewer: CurrentUser, user_id: int) -> Person:
    user = session.get(User, user_id)
    missing = NotFound(f"no learner with id {user_id} whose progress you may see")
    if user is None or user.org_id != viewer.org_id or user.deleted_at is not None:
        raise missing
    person = next(
        (p for p in people_of_org(session, active, viewer.org_id, user.team_id) if p.id == user_id), None
    )
    if person is None or not may_see_person(viewer, person):
        raise missing  # not Forbidden: whether a colleague exists is not for everyone to learn
    return person


def _replay(
    active: ActivePack,
    history: list[Any],
    relevant: list[str],
    priors: dict[str, float],
    targets: dict[str, float],
) -> tuple[list[DomainTimeline], dict[str, datetime]]:
    """Mean mastery per domain at the end of each day with answers; when each target was last reached."""
    current = {s: priors[s] for s in relevant}
    domain_of = {s: active.pack.skill(s).domain for s in relevant}
    days: dict[str, dict[str, float]] = {}
    earned: dict[str, datetime] = {}
    for skill, p_known, at in history:
        if skill not in current:
            continue
        before = current[skill]
        current[skill] = p_known
        target = targets.get(skill)
        if target is not None and before < target <= p_known:
            earned[skill] = as_utc(at)
        day = as_utc(at).date().isoformat()
        days[day] = _domain_means(current, domain_of)
    timeline = []
    for domain in active.pack.meta.domains:
        points = [
            TimelinePoint(day=d, mastery=round(means[domain.id], 4))
            for d, means in days.items()
            if domain.id in means
        ]
        if points:
            timeline.append(DomainTimeline(domain_id=domain.id, name=domain.name, points=points))
    return timeline, earned


def _domain_means(current: dict[str, float], domain_of: dict[str, str]) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for skill, value in current.items():
        sums.setdefault(domain_of[skill], []).append(value)
    return {d: sum(v) / len(v) for d, v in sums.items()}


def _domains(
    active: ActivePack,
    relevant: list[str],
    mastery: dict[str, float],
    targets: dict[str, float] | None,
    unlock: float,
) -> list[DomainStanding]:
    """Mean mastery per domain over the role's skills, and the mean level the role asks for."""
    out = []
    for domain in active.pack.meta.domains:
        skills = [s for s in relevant if active.pack.skill(s).domain == domain.id]
        if not skills:
            continue
        out.append(
            DomainStanding(
                domain_id=domain.id,
                name=domain.name,
                skills=len(skills),
                mastery=round(sum(mastery[s] for s in skills) / len(skills), 4),
                # Skills without an explicit target are prerequisites, needed at the unlock level.
                target=None
                if targets is None
                else round(sum(targets.get(s, unlock) for s in skills) / len(skills), 4),
            )
        )
    return out


def _due_reviews(ctx: AppContext, viewer: CurrentUser, active: ActivePack) -> tuple[bool, list[DueReview]]:
    """Due reviews from the review scheduler (``services.guidance``)."""
    from learnloop.services import guidance

    try:
        entries = guidance.due_reviews(ctx, viewer)
    except Exception:  # a failing scheduler must not take the progress page down with it
        log.exception("due reviews failed for user %s", viewer.id)
        return True, []
    return True, [_review(entry, active) for entry in _as_list(entries)]


def _as_list(entries: Any) -> list[Any]:
    for name in ("reviews", "cards", "items"):
        if hasattr(entries, name) and not isinstance(entries, dict):
            return list(getattr(entries, name))
    return list(entries or [])


def _review(entry: Any, active: ActivePack) -> DueReview:
    if isinstance(entry, BaseModel):
        data = entry.model_dump()
    elif is_dataclass(entry) and not isinstance(entry, type):
        data = asdict(entry)
    elif isinstance(entry, dict):
        data = entry
    else:
        data = {
            k: getattr(entry, k)
            for k in ("item_id", "skill_id", "name", "due", "due_at", "retrievability")
            if hasattr(entry, k)
        }
    skill_id = data.get("skill_id")
    item_id = data.get("item_id")
    if skill_id is None and item_id in active.items:
        skill_id = active.items[item_id].skills[0]
    due = data.get("due_at") or data.get("due")
    recall = data.get("retrievability")
    return DueReview(
        item_id=str(item_id) if item_id is not None else None,
        skill_id=str(skill_id) if skill_id is not None else None,
        skill_name=active.pack.skill(skill_id).name
        if skill_id in active.skills
        else data.get("skill_name") or data.get("name"),
        due_at=as_utc(due) if isinstance(due, datetime) else None,
        retrievability=float(recall) if isinstance(recall, int | float) else None,
    )

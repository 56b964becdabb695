"""The practice loop: choose a role, get the next item, ask for hints, answer, see mastery."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from learnloop.content.models import LEVEL_MASTERY, Item
from learnloop.content.scoring import AnswerError, score_answer
from learnloop.errors import Conflict, InvalidInput, TooLarge
from learnloop.i18n import _
from learnloop.services import grading, guidance
from learnloop.services.auth import CurrentUser
from learnloop.services.code_runner import run_code
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.mastery import apply_answer, load_model, mastery_of
from learnloop.store.models import Enrolment, PendingItem, Response, as_utc, utcnow


class RoleView(BaseModel):
    id: str
    name: str
    description: str
    skills: int


class PresentedItem(BaseModel):
    item: dict[str, Any]
    skill_id: str
    skill_name: str
    #: next_step | review | lesson | maintain | revisit (why the policy chose it; see reason_text)
    reason: str
    predicted_success: float
    hints_shown: list[str]
    lesson_ids: list[str]
    #: practice | review
    activity: str = "practice"
    #: the reason in the learner's language, e.g. "Next step toward Building a RAG pipeline"
    reason_text: str = ""
    toward_skill_id: str | None = None
    toward_skill_name: str | None = None
    #: read this lesson before the first answer on a new skill
    lesson: guidance.LessonSuggestion | None = None


class HintView(BaseModel):
    item_id: str
    level: int
    hint: str
    remaining: int


class MasteryChange(BaseModel):
    skill_id: str
    skill_name: str
    before: float
    after: float


class Feedback(BaseModel):
    item_id: str
    correct: bool
    score: float
    explanation: str
    correct_answer: str | None
    messages: list[str]
    mastery: list[MasteryChange]
    response_id: int


class SkillStatus(BaseModel):
    skill_id: str
    name: str
    domain: str
    mastery: float
    target: float | None
    level: int | None
    attempts: int
    status: str  # met | in_progress | not_started | locked


class DomainStatus(BaseModel):
    domain_id: str
    name: str
    skills: list[SkillStatus]


class SkillMap(BaseModel):
    role_id: str | None
    role_name: str | None
    domains: list[DomainStatus]
    targets_met: int
    targets_total: int


def list_roles(ctx: AppContext) -> list[RoleView]:
    with ctx.session() as session:
        active = ctx.active_pack(session)
        return [
            RoleView(id=r.id, name=r.name, description=r.description, skills=len(r.targets))
            for r in active.pack.roles
        ]


def current_role(session: Session, user_id: int) -> str | None:
    row = session.execute(
        select(Enrolment.role_id)
        .where(Enrolment.user_id == user_id, Enrolment.is_active.is_(True))
        .order_by(Enrolment.id.desc())
    ).first()
    return row[0] if row else None


def enrol(ctx: AppContext, user: CurrentUser, role_id: str) -> RoleView:
    with ctx.session() as session:
        role = ctx.active_pack(session).role(role_id)
        session.execute(update(Enrolment).where(Enrolment.user_id == user.id).values(is_active=False))
        session.add(Enrolment(user_id=user.id, role_id=role.id, is_active=True))
        session.execute(delete(PendingItem).where(PendingItem.user_id == user.id))
        return RoleView(id=role.id, name=role.name, description=role.description, skills=len(role.targets))


def _targets(active: ActivePack, role_id: str, unlock_level: float) -> dict[str, float]:
    role = active.role(role_id)
    targets = {s: unlock_level for s in active.role_skills(role)}
    targets.update(role.mastery_targets())
    return targets


def _present(
    session: Session,
    active: ActivePack,
    item: Item,
    skill_id: str,
    reason: str,
    predicted: float,
    hints_shown: int,
) -> PresentedItem:
    return PresentedItem(
        item=item.public_view(),
        skill_id=skill_id,
        skill_name=active.pack.skill(skill_id).name,
        reason=reason,
        predicted_success=round(predicted, 3),
        hints_shown=item.hints[:hints_shown],
        lesson_ids=[lesson.id for lesson in active.pack.lessons_for_skill(skill_id)],
    )


def next_item(ctx: AppContext, user: CurrentUser) -> PresentedItem:
    """The item to practise now (the same one until it is answered), chosen by expected progress
    per minute (``guidance.choose_next``): due reviews, the frontier of the skill graph, items in
    the success zone, and the lesson to read before the first answer on a new skill."""
    with ctx.session() as session:
        active = ctx.active_pack(session)
        role_id = current_role(session, user.id)
        if role_id is None or role_id not in active.roles:
            raise Conflict(_("Choose a target role first."))
        pending = session.get(PendingItem, user.id)
        if pending is not None and pending.item_id in active.items:
            item = active.items[pending.item_id]
            skill = item.skills[0]
            model, rows = load_model(session), mastery_of(session, user.id)
            p = model.predict(skill, rows[skill].p_known if skill in rows else model.prior(skill))
            shown = _present(session, active, item, skill, pending.reason, p, pending.hints_shown)
            return shown.model_copy(
                update=guidance.presentation(session, active, user.id, skill, pending.reason)
            )
        activity, state = guidance.choose_next(session, ctx, active, user, role_id)
        assert activity.item_id is not None
        reason = guidance.encode_reason(activity)
        if pending is None:
            session.add(
                PendingItem(
                    user_id=user.id,
                    item_id=activity.item_id,
                    reason=reason,
                    presented_at=utcnow(),
                    hints_shown=0,
                )
            )
        else:  # its item left the pack
            pending.item_id, pending.reason, pending.presented_at, pending.hints_shown = (
                activity.item_id,
                reason,
                utcnow(),
                0,
            )
        shown = _present(
            session,
            active,
            active.items[activity.item_id],
            activity.skill_id,
            reason,
            activity.predicted_success or 0.0,
            0,
        )
        return shown.model_copy(
            update=guidance.presentation(
                session, active, user.id, activity.skill_id, reason, state.attempts.get(activity.skill_id, 0)
            )
        )


def _pending_for(session: Session, user_id: int, item_id: str) -> PendingItem:
    pending = session.get(PendingItem, user_id)
    if pending is None or pending.item_id != item_id:
        raise Conflict(
            _("Item %(id)s is not the item you are working on; ask for the next item first.")
            % {"id": item_id}
        )
    return pending


def hint(ctx: AppContext, user: CurrentUser, item_id: str) -> HintView:
    with ctx.session() as session:
        item = ctx.active_pack(session).item(item_id)
        pending = _pending_for(session, user.id, item_id)
        if pending.hints_shown >= len(item.hints):
            level = len(item.hints)
        else:
            pending.hints_shown += 1
            level = pending.hints_shown
        return HintView(
            item_id=item_id, level=level, hint=item.hints[level - 1], remaining=len(item.hints) - level
        )


def _validate_payload(ctx: AppContext, item: Item, answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise InvalidInput(_("The answer must be a JSON object."))
    size = len(json.dumps(answer, ensure_ascii=False).encode())
    if size > ctx.settings.max_answer_bytes:
        raise TooLarge(
            _("The answer is %(size)d bytes; the limit is %(limit)d.")
            % {"size": size, "limit": ctx.settings.max_answer_bytes}
        )
    field = {"choice": "choice", "numeric": "value", "text": "text", "code": "code"}[item.kind]
    if field not in answer:
        raise InvalidInput(
            _("A %(kind)s answer needs the field '%(field)s'.") % {"kind": item.kind, "field": field}
        )
    for value in answer.values():
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(_("The answer contains binary data."))
    return {field: answer[field]}


def _correct_answer(item: Item) -> str | None:
    if item.kind == "choice" and item.options and item.key:
        return f"{item.key}) {item.options[item.key]}"
    if item.kind == "numeric" and item.answer is not None:
        return f"{item.answer:g}" + (f" {item.unit}" if item.unit else "")
    if item.kind == "text" and item.reference_answers:
        return item.reference_answers[0]
    if item.kind == "code":
        return item.solution
    return None


def answer(
    ctx: AppContext, user: CurrentUser, item_id: str, payload: Any, *, context: str = "practice"
) -> Feedback:
    """Score an answer, append it to the log and update mastery, in one transaction."""
    with ctx.session() as session:
        active = ctx.active_pack(session)
        item = active.item(item_id)
        _pending_for(session, user.id, item_id)
    clean = _validate_payload(ctx, item, payload)
    # Scoring (which may run code for seconds) happens outside any transaction.
    if item.kind == "code":
        code = clean["code"]
        if not isinstance(code, str) or not code.strip():
            raise InvalidInput(_("The code must be a non-empty string."))
        run = run_code(
            code,
            item.tests or "",
            timeout_s=ctx.settings.code_timeout_s,
            memory_mb=ctx.settings.code_memory_mb,
        )
        correct, score, messages = run.correct, run.score, run.messages()
    elif item.kind == "text":
        # Model or offline grader along the `grade` route; keywords as the last resort.
        graded = grading.grade_answer(ctx, user, item, clean)
        correct, score, messages = graded.correct, graded.score, graded.messages
    else:
        try:
            result = score_answer(item, clean)
        except AnswerError as exc:
            raise InvalidInput(str(exc)) from None
        correct, score, messages = result.correct, result.score, result.feedback

    with ctx.session() as session:
        pending = _pending_for(session, user.id, item_id)
        now = utcnow()
        duration = int((now - as_utc(pending.presented_at)).total_seconds() * 1000)
        response = Response(
            org_id=user.org_id,
            user_id=user.id,
            item_id=item.id,
            skills=list(item.skills),
            kind=item.kind,
            context=context,
            answer=clean,
            correct=correct,
            score=score,
            hints_used=pending.hints_shown,
            duration_ms=max(duration, 0),
            created_at=now,
        )
        session.add(response)
        session.flush()
        model = load_model(session)
        rows = mastery_of(session, user.id)
        changes = apply_answer(
            session,
            model,
            rows,
            user_id=user.id,
            skills=list(item.skills),
            correct=correct,
            response_id=response.id,
            at=now,
            item_id=item.id,
        )
        session.delete(pending)
        return Feedback(
            item_id=item.id,
            correct=correct,
            score=round(score, 4),
            explanation=item.explanation,
            correct_answer=_correct_answer(item),
            messages=messages,
            response_id=response.id,
            mastery=[
                MasteryChange(
                    skill_id=s, skill_name=active.pack.skill(s).name, before=round(b, 4), after=round(a, 4)
                )
                for s, (b, a) in changes.items()
            ],
        )


def skill_map(ctx: AppContext, user_id: int) -> SkillMap:
    with ctx.session() as session:
        active = ctx.active_pack(session)
        role_id = current_role(session, user_id)
        role = active.roles.get(role_id) if role_id else None
        model = load_model(session)
        rows = mastery_of(session, user_id)
        unlock = ctx.settings.unlock_mastery
        relevant = active.role_skills(role) if role else {s.id for s in active.pack.skills}
        mastery = {s: (rows[s].p_known if s in rows else model.prior(s)) for s in relevant}
        domains: list[DomainStatus] = []
        met = total = 0
        for domain in active.pack.meta.domains:
            statuses = []
            for skill in active.pack.skills:
                if skill.domain != domain.id or skill.id not in relevant:
                    continue
                level = role.targets.get(skill.id) if role else None
                target = LEVEL_MASTERY[level] if level else None
                m = mastery[skill.id]
                locked = any(mastery.get(p, 0.0) < unlock for p in skill.prerequisites)
                if target is not None:
                    total += 1
                    met += int(m >= target)
                if target is not None and m >= target:
                    status = "met"
                elif skill.id in rows:
                    status = "in_progress"
                elif locked:
                    status = "locked"
                else:
                    status = "not_started"
                statuses.append(
                    SkillStatus(
                        skill_id=skill.id,
                        name=skill.name,
                        domain=domain.id,
                        mastery=round(m, 4),
                        target=target,
                        level=level,
                        attempts=rows[skill.id].attempts if skill.id in rows else 0,
                        status=status,
                    )
                )
            if statuses:
                domains.append(DomainStatus(domain_id=domain.id, name=domain.name, skills=statuses))
        return SkillMap(
            role_id=role.id if role else None,
            role_name=role.name if role else None,
            domains=domains,
            targets_met=met,
            targets_total=total,
        )

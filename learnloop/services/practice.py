"""The practice loop: choose a role, get the next item, ask for hints, answer, see mastery."""

from __future__ import annotations

import uuid
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from learnloop.content.models import LEVEL_MASTERY, Item
from learnloop.content.scoring import AnswerError, score_answer
from learnloop.content.translations import detect_language
from learnloop.errors import Conflict, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.jobs.queue import enqueue
from learnloop.llm.gateway import parse_route
from learnloop.sandbox.judge import get_sandbox, limits_from
from learnloop.science.evidence import item_guess, next_answer_range
from learnloop.services import answer_hooks, grading, guidance, review_cards, xapi_outbox
from learnloop.services.answers import clean_answer
from learnloop.services.auth import CurrentUser
from learnloop.services.context import ActivePack, AppContext
from learnloop.services.enrolment import current_role, role_subquery
from learnloop.services.grading_jobs import GRADE_TASK, grade_job_key
from learnloop.services.mastery import (
    apply_answer,
    evidence_rule,
    load_model,
    mastery_of,
    org_of,
    skill_evidence,
    target_gaps_for,
)
from learnloop.services.review_cards import LoggedAnswer
from learnloop.store.guard import lock_learner
from learnloop.store.models import (
    Enrolment,
    Job,
    MasteryHistory,
    PendingItem,
    Response,
    RetryAttempt,
    User,
    as_utc,
    utcnow,
)


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
    #: this showing of the item: send it with the answer, and a repeated answer is not counted twice
    presentation_id: str = ""
    #: the skill the learner chose to practise (and its name) while this item of another skill was
    #: on screen untried: it is answered first, since switching skills must not skip an item
    focus_waiting: str | None = None
    focus_waiting_name: str | None = None


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
    #: which attempt of this presentation this was (a wrong code answer may be tried again)
    attempt: int = 1
    #: attempts left in this presentation; while any are left the solution stays hidden
    attempts_left: int = 0
    #: done | queued (a model is grading the answer: correct, score and mastery come when it
    #: lands; ask GET /api/v1/practice/grades/{presentation_id}) | failed (an admin may retry)
    grading: str = "done"
    #: the grading job, while grading is queued or failed
    job_id: int | None = None
    #: the presentation answered, while grading is queued or failed
    presentation_id: str = ""


class SkillStatus(BaseModel):
    skill_id: str
    name: str
    domain: str
    mastery: float
    target: float | None
    level: int | None
    attempts: int
    status: str  # met | in_progress | not_started | locked
    #: how far one more answer could move the estimate: its uncertainty (lowest, highest)
    mastery_low: float = 0.0
    mastery_high: float = 1.0
    #: distinct items answered right (variant families once)
    distinct_items: int = 0
    #: evidence against guessing (nats) and what a target needs
    evidence: float = 0.0
    evidence_needed: float = 0.0
    #: why a target with its mastery is not yet met: items | open_kind | evidence | stale
    missing: list[str] = []


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
        active = ctx.active_pack(session).localized()
        return [
            RoleView(id=r.id, name=r.name, description=r.description, skills=len(r.targets))
            for r in active.pack.roles
        ]


def list_skills(ctx: AppContext) -> list[tuple[str, str]]:
    """(id, name) of every skill of the active pack, in pack order."""
    with ctx.session() as session:
        return [(s.id, s.name) for s in ctx.active_pack(session).pack.skills]


def enrol(ctx: AppContext, user: CurrentUser, role_id: str) -> RoleView:
    with ctx.session() as session:
        role = ctx.active_pack(session).localized().role(role_id)
        lock_learner(session, user.id)
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
    active: ActivePack,
    item: Item,
    skill_id: str,
    reason: str,
    predicted: float,
    hints_shown: int,
    presentation_id: str,
) -> PresentedItem:
    active.pack.note_served("item", item.id)
    item = item.instance_for(presentation_id)  # a family item: this presentation's instance
    return PresentedItem(
        item=item.public_view(),
        skill_id=skill_id,
        skill_name=active.pack.skill(skill_id).name,
        reason=reason,
        predicted_success=round(predicted, 3),
        hints_shown=item.hints[:hints_shown],
        lesson_ids=[lesson.id for lesson in active.pack.lessons_for_skill(skill_id)],
        presentation_id=presentation_id,
    )


def _shown_again(
    session: Session, active: ActivePack, user_id: int, pending: PendingItem, focus: str | None = None
) -> PresentedItem:
    item = active.items[pending.item_id]
    skill = item.skills[0]
    model, rows = load_model(session, org_of(session, user_id)), mastery_of(session, user_id)
    p = model.predict(skill, rows[skill].p_known if skill in rows else model.prior(skill))
    shown = _present(active, item, skill, pending.reason, p, pending.hints_shown, pending.presentation_id)
    update = guidance.presentation(session, active, user_id, skill, pending.reason)
    if focus is not None and focus not in item.skills:
        update |= {"focus_waiting": focus, "focus_waiting_name": active.pack.skill(focus).name}
    return shown.model_copy(update=update)


#: the learner's role now and their pending item as stored now (not as this session first read
#: it), in one statement: the learner's row, its newest active enrolment, its pending row if any
_ROLE_AND_PENDING = (
    select(role_subquery(), PendingItem)
    .select_from(User)
    .outerjoin(PendingItem, PendingItem.user_id == User.id)
    .where(User.id == bindparam("role_user"))
    .execution_options(populate_existing=True)
)


def _role_and_pending(session: Session, user_id: int) -> tuple[str | None, PendingItem | None]:
    """The learner's role (:func:`enrolment.current_role`) and pending item, read as stored now."""
    row = session.execute(_ROLE_AND_PENDING, {"role_user": user_id}).one_or_none()
    if row is None:
        return None, None
    return (None if row[0] is None else str(row[0])), row[1]


def _still_answerable(active: ActivePack, pending: PendingItem | None, code_on: bool) -> bool:
    """The pending item stays on screen while it is in the pack, unless it is an unanswered code
    item on a server whose sandbox went away. Choosing to practise another skill does not replace
    it: otherwise switching skills would skip an untried item (fishing for easy ones) unrecorded."""
    if pending is None or pending.item_id not in active.items:
        return False
    item = active.items[pending.item_id]
    return code_on or item.kind != "code" or pending.attempts > 0


def next_item(ctx: AppContext, user: CurrentUser, focus: str | None = None) -> PresentedItem:
    """The item to practise now (the same one until it is answered), chosen by expected progress
    per minute (``guidance.choose_next``): due reviews, the frontier of the skill graph, items in
    the success zone, and the lesson to read before the first answer on a new skill. ``focus``:
    a skill the learner chose to practise; its best item comes once the item on screen is
    answered (an item of another skill stays, marked ``focus_waiting``: no skipping by switching).

    Concurrent calls (two tabs, a reload, several worker processes) show the same item: the
    choice is made under the learner's lock, and whoever waited for it shows what was chosen."""
    # probed before any transaction (the first probe starts a sandbox), then cached
    code_on = get_sandbox(ctx.settings).availability().ok
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id).localized()
        if focus is not None and focus not in active.pack.skill_index():
            raise InvalidInput(_("There is no skill %(skill)s in this pack.") % {"skill": focus[:80]})
        # under the learner's lock from the start: the pending item read is the one stored now,
        # and no other request chooses for this learner meanwhile (one read of it, not one
        # before the lock and one after)
        lock_learner(session, user.id)
        role_id, pending = _role_and_pending(session, user.id)
        if role_id is None or role_id not in active.roles:
            raise Conflict(_("Choose a target role first."))
        if _still_answerable(active, pending, code_on):
            assert pending is not None
            return _shown_again(session, active, user.id, pending, focus)
        activity, state = guidance.choose_next(
            session, ctx, active, user, role_id, code_items=code_on, focus=focus
        )
        assert activity.item_id is not None
        reason = guidance.encode_reason(activity)
        presentation_id = uuid.uuid4().hex
        if pending is None:
            session.add(
                PendingItem(
                    user_id=user.id,
                    item_id=activity.item_id,
                    reason=reason,
                    presented_at=utcnow(),
                    hints_shown=0,
                    presentation_id=presentation_id,
                )
            )
        else:  # its item left the pack, or code items were turned off
            pending.item_id, pending.reason, pending.presented_at = activity.item_id, reason, utcnow()
            pending.hints_shown, pending.presentation_id, pending.attempts = 0, presentation_id, 0
        shown = _present(
            active,
            active.items[activity.item_id],
            activity.skill_id,
            reason,
            activity.predicted_success or 0.0,
            0,
            presentation_id,
        )
        return shown.model_copy(
            update=guidance.presentation(
                session, active, user.id, activity.skill_id, reason, state.attempts.get(activity.skill_id, 0)
            )
        )


def _not_current(item_id: str) -> Conflict:
    return Conflict(
        _("Item %(id)s is not the item you are working on; ask for the next item first.") % {"id": item_id}
    )


def _pending_for(session: Session, user_id: int, item_id: str) -> PendingItem:
    pending = session.get(PendingItem, user_id)
    if pending is None or pending.item_id != item_id:
        raise _not_current(item_id)
    return pending


def hint(ctx: AppContext, user: CurrentUser, item_id: str) -> HintView:
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id).localized()
        item = active.item(item_id)
        lock_learner(session, user.id)  # two clicks at once show two hints, not one hint twice
        pending = _pending_for(session, user.id, item_id)
        item = item.instance_for(pending.presentation_id)
        if pending.hints_shown >= len(item.hints):
            level = len(item.hints)
        else:
            pending.hints_shown += 1
            level = pending.hints_shown
            xapi_outbox.record_hint(
                session, active, user.org_id, user.id, item, level, pending.presentation_id
            )
        return HintView(
            item_id=item_id, level=level, hint=item.hints[level - 1], remaining=len(item.hints) - level
        )


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


def _feedback(
    active: ActivePack,
    item: Item,
    response: Response,
    messages: list[str],
    changes: dict[str, tuple[float, float]],
    *,
    attempts_left: int = 0,
) -> Feedback:
    """What the learner sees after an answer; the explanation and the solution wait until no
    attempt is left."""
    return Feedback(
        item_id=item.id,
        correct=response.correct,
        score=round(response.score, 4),
        explanation=item.explanation if attempts_left == 0 else "",
        correct_answer=_correct_answer(item) if attempts_left == 0 else None,
        messages=messages,
        response_id=response.id,
        attempts_left=attempts_left,
        mastery=[
            MasteryChange(
                skill_id=s, skill_name=active.pack.skill(s).name, before=round(b, 4), after=round(a, 4)
            )
            for s, (b, a) in changes.items()
        ],
    )


def _replay(
    session: Session,
    active: ActivePack,
    user_id: int,
    item: Item,
    presentation_id: str,
    clean: dict[str, Any],
    messages: list[str] | None,
) -> Feedback:
    """The feedback of the answer already stored for this presentation, when ``clean`` is that
    answer again (a retry, a double click); a different answer, or none stored, is a conflict."""
    item = item.instance_for(presentation_id)
    response = session.execute(
        select(Response).where(Response.user_id == user_id, Response.presentation_id == presentation_id)
    ).scalar_one_or_none()
    if response is None:
        job = _grade_job(session, user_id, presentation_id)
        if job is not None and job.payload.get("item_id") == item.id:
            if job.payload.get("answer") != clean:
                raise Conflict(_("You have already answered this item; ask for the next item."))
            return _grading_feedback(item, job)
    if response is None or response.item_id != item.id:
        raise _not_current(item.id)
    if response.answer != clean:
        # the last attempt of a code item that was tried again, posted twice
        last = session.execute(
            select(RetryAttempt)
            .where(RetryAttempt.user_id == user_id, RetryAttempt.presentation_id == presentation_id)
            .order_by(RetryAttempt.attempt.desc())
            .limit(1)
        ).scalar_one_or_none()
        if last is None or last.answer != clean:
            raise Conflict(_("You have already answered this item; ask for the next item."))
        return _attempt_feedback(
            active, item, response, last.correct, last.score, messages or [], last.attempt, 0
        )
    if messages is None:  # a late retry: choice and numeric feedback is cheap to state again
        try:
            messages = score_answer(item, clean).feedback if item.kind in ("choice", "numeric") else []
        except AnswerError:
            messages = []
    model = load_model(session, response.org_id)
    changes: dict[str, tuple[float, float]] = {}
    for skill_id, after in session.execute(
        select(MasteryHistory.skill_id, MasteryHistory.p_known).where(
            MasteryHistory.user_id == user_id, MasteryHistory.response_id == response.id
        )
    ).all():
        before = session.scalar(
            select(MasteryHistory.p_known)
            .where(
                MasteryHistory.user_id == user_id,
                MasteryHistory.skill_id == skill_id,
                MasteryHistory.response_id < response.id,
            )
            .order_by(MasteryHistory.response_id.desc())
            .limit(1)
        )
        changes[skill_id] = (model.prior(skill_id) if before is None else before, after)
    return _feedback(active, item, response, messages, changes)


def answer(
    ctx: AppContext,
    user: CurrentUser,
    item_id: str,
    payload: Any,
    *,
    context: str = "practice",
    presentation_id: str | None = None,
) -> Feedback:
    """Score an answer, append it to the log and update mastery, in one transaction.

    Each presentation of an item is answered once, whichever process serves the answer:
    the pending item is claimed under the learner's lock, the response carries the
    presentation's id (unique per learner), and a copy of the stored answer (a retry, a double
    click, the same answer posted ten times at once) gets the stored answer's feedback without
    being counted again. ``presentation_id`` is the one ``next_item`` showed; without it, the
    presentation pending when the answer arrives."""
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id).localized()
        item = active.item(item_id)
        clean = clean_answer(item, payload, ctx.settings.max_answer_bytes)
        at_once = item.kind in SCORED_AT_ONCE
        if at_once:  # claimed, scored and recorded in this one transaction, under the lock
            lock_learner(session, user.id)
        pending = session.get(PendingItem, user.id)
        if presentation_id is None:
            if pending is None or pending.item_id != item_id:
                raise _not_current(item_id)
            presentation_id = pending.presentation_id
        elif pending is None or pending.presentation_id != presentation_id:
            return _replay(session, active, user.id, item, presentation_id, clean, None)
        elif pending.item_id != item_id:
            raise _not_current(item_id)
        if at_once:
            item = item.instance_for(presentation_id)
            scored = _score_at_once(item, clean)
            return _record(ctx, session, active, user, item, pending, clean, scored, context, same_read=True)
    # A family item is scored on the instance this presentation showed (its seed comes from the
    # presentation id, which the response stores: grading and review are reproducible).
    item = item.instance_for(presentation_id)
    # Scoring that may take seconds (code runs, a model grades) happens outside any transaction.
    if item.kind == "code":
        code = clean["code"]
        if not code.strip():
            raise InvalidInput(_("The code must be a non-empty string."))
        verdict = get_sandbox(ctx.settings).run(code, item.cases or [], limits_from(ctx.settings))
        scored = (verdict.correct, verdict.score, verdict.messages())
    elif item.kind == "text" and _grade_in_background(ctx):
        return _queue_grade(ctx, user, item, clean, presentation_id, context)
    elif item.kind == "text":
        # Model or offline grader along the `grade` route; keywords as the last resort.
        # Reference answers and rubric keywords in the language the answer is written in.
        in_language = active.localized(detect_language(str(clean.get("text", "")))).items[item.id]
        graded = grading.grade_answer(ctx, user, in_language, clean, pack=(active.base or active).pack)
        scored = (graded.correct, graded.score, graded.messages)
    else:
        scored = _score_at_once(item, clean)

    with ctx.session() as session:
        lock_learner(session, user.id)
        pending = session.execute(
            select(PendingItem).where(
                PendingItem.user_id == user.id, PendingItem.presentation_id == presentation_id
            )
        ).scalar_one_or_none()
        if pending is None or pending.item_id != item.id:  # answered meanwhile, or replaced
            return _replay(session, active, user.id, item, presentation_id, clean, scored[2])
        return _record(ctx, session, active, user, item, pending, clean, scored, context)


#: item kinds scored in a moment by the item's own key (no sandbox, no model): their answers
#: are claimed, scored and recorded in one transaction
SCORED_AT_ONCE = frozenset({"choice", "numeric"})


def _score_at_once(item: Item, clean: dict[str, Any]) -> tuple[bool, float, list[str]]:
    try:
        result = score_answer(item, clean)
    except AnswerError as exc:
        raise InvalidInput(str(exc)) from None
    return result.correct, result.score, result.feedback


def _record(
    ctx: AppContext,
    session: Session,
    active: ActivePack,
    user: CurrentUser,
    item: Item,
    pending: PendingItem,
    clean: dict[str, Any],
    scored: tuple[bool, float, list[str]],
    context: str,
    *,
    same_read: bool = False,
) -> Feedback:
    """Store the scored answer to the presentation ``pending`` (claimed under the learner's lock
    in ``session``): the response, mastery and what follows an answer; a later attempt of a
    code item changes no mastery (``_retry``). ``same_read``: ``active`` was read in this
    transaction (not before scoring), so its row is the active pack's now."""
    correct, score, messages = scored
    presentation_id = pending.presentation_id
    allowed = ctx.settings.code_attempts if item.kind == "code" else 1
    if pending.attempts >= 1:
        return _retry(session, active, user, item, pending, clean, scored, allowed)
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
        presentation_id=presentation_id,
    )
    # written with prebuilt Core statements, not the ORM's flush (its unit of work cost more
    # CPU than the statements): the response's id comes back from the insert, and ``response``
    # stays a plain object carrying what was stored
    response.id = session.execute(_INSERT_RESPONSE, _response_values(response)).scalar_one()
    retry_left = allowed - 1 if not correct else 0
    if retry_left > 0:
        pending.attempts = 1  # the item stays on screen (and protected) for another try
    else:
        session.execute(_DELETE_PENDING, {"user_id": user.id, "presentation_id": presentation_id})
        session.expunge(pending)
    model = load_model(session, user.org_id)
    rows = mastery_of(session, user.id, with_evidence=True)
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
        pack_row=active.row_id if same_read else None,
    )
    # its review card now, under the lock, so the next item's read of the cards folds nothing
    stored = active.items.get(item.id)
    review_cards.fold_answer(
        session,
        user.id,
        user.org_id,
        active.pack,
        LoggedAnswer(
            response.id, user.id, item.id, correct, pending.hints_shown or 0, response.duration_ms, now
        ),
        stored.minutes if stored is not None else 1.0,
    )
    answer_hooks.after_answer(session, ctx, active, user.org_id, user.id, item, response, now, rows=rows)
    return _feedback(active, item, response, messages, changes, attempts_left=retry_left)


_RESPONSES = cast(Table, Response.__table__)
#: the answer's write (:func:`_record`): built once
_INSERT_RESPONSE = _RESPONSES.insert().returning(_RESPONSES.c.id)
_PENDING = cast(Table, PendingItem.__table__)
_DELETE_PENDING = delete(_PENDING).where(
    _PENDING.c.user_id == bindparam("user_id"), _PENDING.c.presentation_id == bindparam("presentation_id")
)


def _response_values(response: Response) -> dict[str, Any]:
    return {column.key: getattr(response, column.key) for column in _RESPONSES.columns if column.key != "id"}


def _grade_in_background(ctx: AppContext) -> bool:
    """A served model grades text answers in a job (the offline grader stays in the request)."""
    return ctx.settings.grade_in_background and parse_route(ctx.settings.llm_grade)[0] != "offline"


def _grade_job(session: Session, user_id: int, presentation_id: str) -> Job | None:
    job = session.execute(
        select(Job).where(Job.dedupe_key == grade_job_key(user_id, presentation_id))
    ).scalar_one_or_none()
    return job if job is not None and job.task == GRADE_TASK else None


def _grading_feedback(item: Item, job: Job) -> Feedback:
    """What the learner sees while a model grades their answer (or after the job failed)."""
    failed = job.state == "dead"
    message = (
        _("This answer could not be graded yet. An administrator can have it graded again.")
        if failed
        else _("Your answer is being graded. Your mastery updates when the grade is in.")
    )
    return Feedback(
        item_id=item.id,
        correct=False,
        score=0.0,
        explanation="",
        correct_answer=None,
        messages=[message],
        mastery=[],
        response_id=0,
        grading="failed" if failed else "queued",
        job_id=job.id,
        presentation_id=str(job.payload.get("presentation_id", "")),
    )


def _queue_grade(
    ctx: AppContext,
    user: CurrentUser,
    item: Item,
    clean: dict[str, Any],
    presentation_id: str,
    context: str,
) -> Feedback:
    """End the presentation and hand the answer to a grading job (``services/grading_jobs.py``)."""
    with ctx.session() as session:
        lock_learner(session, user.id)
        active = ctx.active_pack(session, user.org_id).localized()
        pending = session.execute(
            select(PendingItem).where(
                PendingItem.user_id == user.id, PendingItem.presentation_id == presentation_id
            )
        ).scalar_one_or_none()
        if pending is None or pending.item_id != item.id:  # answered meanwhile, or replaced
            return _replay(session, active, user.id, item, presentation_id, clean, None)
        duration = int((utcnow() - as_utc(pending.presented_at)).total_seconds() * 1000)
        payload = {
            "org_id": user.org_id,
            "user_id": user.id,
            "item_id": item.id,
            "presentation_id": presentation_id,
            "answer": clean,
            "context": context,
            "hints_used": pending.hints_shown,
            "duration_ms": max(duration, 0),
            "locale": user.locale,
        }
        enqueue(
            ctx,
            GRADE_TASK,
            payload,
            dedupe_key=grade_job_key(user.id, presentation_id),
            org_id=user.org_id,
            session=session,
        )
        session.delete(pending)
        session.flush()
        job = _grade_job(session, user.id, presentation_id)
        assert job is not None
        return _grading_feedback(item, job)


def grade_status(ctx: AppContext, user: CurrentUser, presentation_id: str) -> Feedback:
    """The feedback of an answer graded by a job: "being graded" until the grade is in, then
    the grade, the explanation and the mastery change, as the request would have given them."""
    with ctx.session() as session:
        active = ctx.active_pack(session, user.org_id).localized()
        job = _grade_job(session, user.id, presentation_id)
        response = session.execute(
            select(Response).where(Response.user_id == user.id, Response.presentation_id == presentation_id)
        ).scalar_one_or_none()
        if response is not None:
            result = (job.result or {}) if job is not None else {}
            messages = [str(m) for m in result.get("messages", [])]
            item = active.item(response.item_id)
            return _replay(session, active, user.id, item, presentation_id, response.answer, messages)
        if job is None:
            raise NotFound(_("There is no answer of yours being graded here."))
        return _grading_feedback(active.item(str(job.payload["item_id"])), job)


def _retry(
    session: Session,
    active: ActivePack,
    user: CurrentUser,
    item: Item,
    pending: PendingItem,
    clean: dict[str, Any],
    scored: tuple[bool, float, list[str]],
    allowed: int,
) -> Feedback:
    """Store a second or later attempt of this presentation; it changes no mastery.

    The same answer posted again (a double click) is not another attempt: it gets this
    attempt's feedback again. The last attempt, or a correct one, ends the presentation."""
    correct, score, messages = scored
    first = session.execute(
        select(Response).where(
            Response.user_id == user.id, Response.presentation_id == pending.presentation_id
        )
    ).scalar_one()
    last = session.execute(
        select(RetryAttempt)
        .where(RetryAttempt.user_id == user.id, RetryAttempt.presentation_id == pending.presentation_id)
        .order_by(RetryAttempt.attempt.desc())
        .limit(1)
    ).scalar_one_or_none()
    if (last.answer if last is not None else first.answer) == clean:
        attempt = last.attempt if last is not None else 1
        return _attempt_feedback(active, item, first, correct, score, messages, attempt, allowed - attempt)
    attempt = pending.attempts + 1
    session.add(
        RetryAttempt(
            org_id=user.org_id,
            user_id=user.id,
            item_id=item.id,
            presentation_id=pending.presentation_id,
            attempt=attempt,
            answer=clean,
            correct=correct,
            score=score,
            created_at=utcnow(),
        )
    )
    left = 0 if correct else max(0, allowed - attempt)
    if left > 0:
        pending.attempts = attempt
    else:
        session.delete(pending)
    session.flush()
    return _attempt_feedback(active, item, first, correct, score, messages, attempt, left)


def _attempt_feedback(
    active: ActivePack,
    item: Item,
    first: Response,
    correct: bool,
    score: float,
    messages: list[str],
    attempt: int,
    left: int,
) -> Feedback:
    feedback = _feedback(active, item, first, messages, {}, attempts_left=max(0, left))
    return feedback.model_copy(update={"correct": correct, "score": round(score, 4), "attempt": attempt})


def reveal(ctx: AppContext, user: CurrentUser, presentation_id: str) -> Feedback:
    """Give up the remaining attempts of a code item: end its presentation, show the solution."""
    with ctx.session() as session:
        lock_learner(session, user.id)
        active = ctx.active_pack(session, user.org_id).localized()
        pending = session.get(PendingItem, user.id)
        if pending is None or pending.presentation_id != presentation_id or pending.attempts < 1:
            raise Conflict(_("There is no attempt to end here; ask for the next item."))
        item = active.item(pending.item_id).instance_for(presentation_id)
        first = session.execute(
            select(Response).where(Response.user_id == user.id, Response.presentation_id == presentation_id)
        ).scalar_one()
        session.delete(pending)
        return _feedback(active, item, first, [], {}).model_copy(update={"correct": False, "score": 0.0})


def skill_map(ctx: AppContext, user_id: int) -> SkillMap:
    with ctx.session() as session:
        active = ctx.active_pack(session).localized()
        role_id = current_role(session, user_id)
        role = active.roles.get(role_id) if role_id else None
        model = load_model(session, org_of(session, user_id))
        rows = mastery_of(session, user_id)
        evidence = skill_evidence(session, user_id)
        rule, now = evidence_rule(ctx.settings), utcnow().timestamp()
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
                bank = active.items_by_skill.get(skill.id, [])
                ev = evidence.get(skill.id)
                gaps = target_gaps_for(bank, m, target, ev, rule, now) if target is not None else ["mastery"]
                low, high = next_answer_range(
                    m,
                    model.params(skill.id),
                    [item_guess(i.kind, len(i.options) if i.options else None) for i in bank],
                )
                if target is not None:
                    total += 1
                    met += int(not gaps)
                if target is not None and not gaps:
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
                        mastery_low=round(low, 4),
                        mastery_high=round(high, 4),
                        distinct_items=len(ev.families) if ev else 0,
                        evidence=round(ev.cusum, 2) if ev else 0.0,
                        evidence_needed=rule.threshold if target is not None else 0.0,
                        missing=[g for g in gaps if g != "mastery"]
                        if target is not None and m >= target
                        else [],
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

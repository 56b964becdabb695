"""Grading a free-text answer with a served model, as a job.

When the ``grade`` route starts with a model (``LEARNLOOP_LLM_GRADE=openai_compat,...``) and
``grade_in_background`` is on, the practice loop does not wait for the model: it ends the
presentation and enqueues ``grade.text`` with the answer (``practice.answer``); the learner sees
"being graded". This module is that job. It grades the answer and then, in one transaction under
the learner's lock, appends the response to the log, queues a review where the grade is unsure,
and folds the answer into mastery, as the request would have; the same transaction writes the
answer's xAPI statements and webhook events, issues a badge the answer earns and schedules the
LTI grade passback. The response gets its id when the grade lands, so the live order of answers
is the log's order and a rebuild replays it exactly.

A model that times out or cannot be reached is never a grade: the job fails and is tried again
with backoff. On its last try the offline grader grades the answer and an instructor reviews it.
A job that lands a grade twice (a worker died after the commit) finds the response and stops.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from learnloop import i18n
from learnloop.content.translations import detect_language
from learnloop.errors import LearnloopError
from learnloop.i18n import _
from learnloop.jobs.registry import JobRun, PermanentFailure
from learnloop.llm.gateway import BudgetSpent
from learnloop.llm.grading import GradeResult, grade_keywords, grade_text, references_by_language
from learnloop.services import answer_hooks
from learnloop.services.context import AppContext
from learnloop.services.llm_usage import gateway_for
from learnloop.services.mastery import apply_answer, load_model, mastery_of
from learnloop.store.guard import lock_learner
from learnloop.store.models import GradeReview, Response, User, utcnow

log = logging.getLogger("learnloop.grading")
GRADE_TASK = "grade.text"


def grade_job_key(user_id: int, presentation_id: str) -> str:
    """The one grading job of a presentation."""
    return f"grade:{user_id}:{presentation_id}"


def _grade(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> tuple[GradeResult, bool]:
    """The grade, and whether the model failed and the offline grader stood in for it."""
    text = str(payload["answer"].get("text", ""))
    with ctx.session() as session:
        active = ctx.active_pack(session, int(payload["org_id"]))
    if payload["item_id"] not in active.items:
        raise PermanentFailure(f"the item {payload['item_id']} is no longer in the active pack")
    pack = active.pack
    item = active.localized(detect_language(text)).items[payload["item_id"]]
    gateway = gateway_for(ctx)
    options: dict[str, Any] = {
        "org_id": payload["org_id"],
        "user_id": payload["user_id"],
        "review_below": ctx.settings.llm_review_confidence,
        "references_by_language": references_by_language(pack, item.id),
        "item_language": pack.meta.language,
    }
    if not run.last:
        try:
            return grade_text(gateway, item, text, fallback=False, **options), False
        except BudgetSpent:  # waiting does not refill the budget: the offline grade, now
            return grade_text(gateway, item, text, **options), False
        # a timeout or an unreachable model raises here: the job is tried again later
    try:
        # the last try: the route's fallback (the offline grader) stands in for a failed model
        result = grade_text(gateway, item, text, **options)
        return result, not result.grader.startswith("model:")
    except Exception:
        log.exception("grading failed; falling back to rubric keywords")
        result = grade_keywords(item, text)
        result.needs_review, result.review_reason = True, "grader_error"
        return result, True


def land_grade(ctx: AppContext, payload: dict[str, Any], run: JobRun) -> dict[str, Any]:
    """The ``grade.text`` task: grade, then record the answer and move mastery."""
    user_id, presentation_id = int(payload["user_id"]), str(payload["presentation_id"])
    with ctx.session() as session:
        done = session.scalar(
            select(Response.id).where(
                Response.user_id == user_id, Response.presentation_id == presentation_id
            )
        )
        learner = session.get(User, user_id)
    if done is not None:
        return {"response_id": int(done), "messages": []}
    if learner is None or learner.deleted_at is not None:
        raise PermanentFailure("the learner's account no longer exists")
    i18n.set_locale(str(payload.get("locale") or "en"))
    result, fell_back = _grade(ctx, payload, run)
    if fell_back and not result.needs_review:
        result.needs_review, result.review_reason = True, "model_unavailable"
    messages = [*result.notices, *result.feedback]
    if result.needs_review:
        messages.append(_("An instructor will check this grade; their decision is the one that counts."))
    with ctx.session() as session:
        lock_learner(session, user_id)
        done = session.scalar(
            select(Response.id).where(
                Response.user_id == user_id, Response.presentation_id == presentation_id
            )
        )
        if done is not None:
            return {"response_id": int(done), "messages": messages}
        active = ctx.active_pack(session, int(payload["org_id"]))
        item = active.item(str(payload["item_id"]))
        now = utcnow()
        response = Response(
            org_id=int(payload["org_id"]),
            user_id=user_id,
            item_id=item.id,
            skills=list(item.skills),
            kind=item.kind,
            context=str(payload.get("context") or "practice"),
            answer=dict(payload["answer"]),
            correct=result.correct,
            score=result.score,
            hints_used=int(payload.get("hints_used") or 0),
            duration_ms=int(payload.get("duration_ms") or 0),
            created_at=now,
            presentation_id=presentation_id,
        )
        session.add(response)
        session.flush()
        if result.needs_review:
            session.add(
                GradeReview(
                    org_id=response.org_id,
                    user_id=user_id,
                    item_id=item.id,
                    answer_text=str(payload["answer"].get("text", "")),
                    provisional_correct=result.correct,
                    provisional_score=result.score,
                    confidence=result.confidence,
                    grader=result.grader[:80],
                    reason=result.review_reason or "low_confidence",
                    rationale=result.rationale[:2000],
                    status="pending",
                    response_id=response.id,
                )
            )
        rows = mastery_of(session, user_id)
        try:
            apply_answer(
                session,
                load_model(session, response.org_id),
                rows,
                user_id=user_id,
                skills=list(item.skills),
                correct=result.correct,
                response_id=response.id,
                at=now,
                item_id=item.id,
            )
        except LearnloopError as exc:  # e.g. a skill the pack no longer has: retrying cannot help
            raise PermanentFailure(str(exc)) from exc
        # the hooks the request would have called, in the grade's transaction
        answer_hooks.after_answer(
            session, ctx, active, response.org_id, user_id, item, response, now, rows=rows
        )
        return {
            "response_id": int(response.id),
            "messages": messages,
            "correct": result.correct,
            "review": result.needs_review,
        }

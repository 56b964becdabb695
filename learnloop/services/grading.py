"""Grading free-text answers as a use case, and the instructors' review queue.

:func:`grade_answer` is what the practice loop calls for text items. A grade the graders are
not sure of (or could not give) is provisional: it is recorded in the append-only response
log as usual and queued here; the instructor's decision then overrides it, and the learner's
mastery is replayed from the log with the decision in place of the provisional grade.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from learnloop.content.models import Item, Pack
from learnloop.errors import Conflict, InvalidInput, NotFound
from learnloop.i18n import _
from learnloop.llm.grading import GradeResult, grade_keywords, grade_text, references_by_language
from learnloop.services.auth import CurrentUser
from learnloop.services.context import AppContext
from learnloop.services.llm_usage import gateway_for
from learnloop.services.mastery import rebuild_all
from learnloop.store.models import GradeReview, Response, User, UtcDateTime, as_utc, utcnow

log = logging.getLogger("learnloop.grading")
ORPHAN_AFTER = timedelta(minutes=10)


class GradeOutcome(BaseModel):
    correct: bool
    score: float
    confidence: float
    grader: str
    messages: list[str]
    review_id: int | None


def grade_answer(
    ctx: AppContext, user: CurrentUser, item: Item, answer: dict[str, Any], pack: Pack | None = None
) -> GradeOutcome:
    """Grade a text answer along the ``grade`` route; queue it for review when unsure.
    ``pack``: the learner's organisation's view of the active pack in its base language, when
    the caller has read it (else it is read here)."""
    text = answer.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(_("a non-empty text answer is required"))
    if pack is None:
        with ctx.session() as session:
            pack = ctx.active_pack(session, user.org_id).pack
    try:
        result = grade_text(
            gateway_for(ctx),
            item,
            text,
            org_id=user.org_id,
            user_id=user.id,
            review_below=ctx.settings.llm_review_confidence,
            # An answer in another language is graded against the item's texts in it when the
            # pack translates them, else across languages.
            references_by_language=references_by_language(pack, item.id),
            item_language=pack.meta.language,
        )
    except Exception:
        # The graders failed in an unexpected way: the rubric keywords give a provisional
        # grade, and an instructor decides.
        log.exception("grading failed; falling back to rubric keywords")
        result = grade_keywords(item, text)
        result.needs_review, result.review_reason = True, "grader_error"
    review_id = _queue(ctx, user, item, text, result) if result.needs_review else None
    messages = [*result.notices, *result.feedback]
    if review_id is not None:
        messages.append(_("An instructor will check this grade; their decision is the one that counts."))
    return GradeOutcome(
        correct=result.correct,
        score=result.score,
        confidence=round(result.confidence, 4),
        grader=result.grader,
        messages=messages,
        review_id=review_id,
    )


def _queue(ctx: AppContext, user: CurrentUser, item: Item, text: str, result: GradeResult) -> int:
    with ctx.session() as session:
        row = GradeReview(
            org_id=user.org_id,
            user_id=user.id,
            item_id=item.id,
            answer_text=text,
            provisional_correct=result.correct,
            provisional_score=result.score,
            confidence=result.confidence,
            grader=result.grader[:80],
            reason=result.review_reason or "low_confidence",
            rationale=result.rationale[:2000],
            status="pending",
        )
        session.add(row)
        session.flush()
        return row.id


class ReviewView(BaseModel):
    id: int
    learner: str
    item_id: str
    stem: str
    reference_answers: list[str]
    rubric: list[str]
    answer_text: str
    provisional_correct: bool
    provisional_score: float
    confidence: float
    grader: str
    reason: str
    rationale: str
    status: str
    decided_correct: bool | None
    decided_score: float | None
    response_id: int | None
    created_at: UtcDateTime


def _link_responses(session: Session, org_id: int) -> None:
    """Attach queued reviews to the response the practice loop wrote right after grading."""
    open_rows = (
        session.execute(
            select(GradeReview).where(
                GradeReview.org_id == org_id,
                GradeReview.response_id.is_(None),
                GradeReview.status == "pending",
            )
        )
        .scalars()
        .all()
    )
    for review in open_rows:
        candidates = (
            session.execute(
                select(Response)
                .where(
                    Response.user_id == review.user_id,
                    Response.item_id == review.item_id,
                    Response.created_at >= review.created_at - timedelta(seconds=1),
                )
                .order_by(Response.id)
            )
            .scalars()
            .all()
        )
        taken = set(
            session.execute(
                select(GradeReview.response_id).where(GradeReview.response_id.is_not(None))
            ).scalars()
        )
        match = next(
            (r for r in candidates if r.id not in taken and r.answer.get("text") == review.answer_text), None
        )
        if match is not None:
            review.response_id = match.id
        elif as_utc(review.created_at) < utcnow() - ORPHAN_AFTER:
            review.status = "orphaned"  # graded, but the answer was never recorded (e.g. a conflict)


def _view(review: GradeReview, learner: str, item: Item | None) -> ReviewView:
    return ReviewView(
        id=review.id,
        learner=learner,
        item_id=review.item_id,
        stem=item.stem if item else "",
        reference_answers=list(item.reference_answers or []) if item else [],
        rubric=[c.description for c in item.rubric or []] if item else [],
        answer_text=review.answer_text,
        provisional_correct=review.provisional_correct,
        provisional_score=review.provisional_score,
        confidence=round(review.confidence, 3),
        grader=review.grader,
        reason=review.reason,
        rationale=review.rationale,
        status=review.status,
        decided_correct=review.decided_correct,
        decided_score=review.decided_score,
        response_id=review.response_id,
        created_at=review.created_at,
    )


def review_queue(ctx: AppContext, user: CurrentUser, status: str = "pending") -> list[ReviewView]:
    """Reviews of the caller's organisation (instructors and admins)."""
    user.require("instructor")
    if status not in ("pending", "decided"):
        raise InvalidInput(_("status must be pending or decided"))
    with ctx.session() as session:
        _link_responses(session, user.org_id)
        active = ctx.active_pack(session, user.org_id)
        rows = session.execute(
            select(GradeReview, User.name)
            .join(User, User.id == GradeReview.user_id)
            .where(GradeReview.org_id == user.org_id, GradeReview.status == status)
            .order_by(GradeReview.id.desc() if status == "decided" else GradeReview.id)
            .limit(200)
        ).all()
        return [_view(review, name, active.items.get(review.item_id)) for review, name in rows]


def decide(
    ctx: AppContext, user: CurrentUser, review_id: int, correct: bool, score: float | None = None
) -> ReviewView:
    """Record the instructor's grade; it replaces the provisional one in the learner's mastery."""
    user.require("instructor")
    if score is not None and not 0 <= score <= 1:
        raise InvalidInput(_("the score must be between 0 and 1"))
    with ctx.session() as session:
        _link_responses(session, user.org_id)
        review = session.get(GradeReview, review_id)
        if review is None or review.org_id != user.org_id:
            raise NotFound(_("No such review."))
        if review.status == "orphaned" or review.response_id is None:
            raise Conflict(_("This answer was not recorded, so there is nothing to grade."))
        review.status = "decided"
        review.decided_correct = correct
        review.decided_score = score if score is not None else (1.0 if correct else 0.0)
        review.reviewer_id = user.id
        review.decided_at = utcnow()
        session.flush()
        replay_mastery(session, review.user_id)
        learner = session.get(User, review.user_id)
        item = ctx.active_pack(session, user.org_id).items.get(review.item_id)
        return _view(review, learner.name if learner else "", item)


def replay_mastery(session: Session, user_id: int) -> int:
    """Rebuild one learner's mastery from the response log with the instructors' decisions."""
    return rebuild_all(session, user_id=user_id)

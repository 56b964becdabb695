"""Grades as they count: the log's provisional grade unless an instructor decided otherwise."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from learnloop.store.models import GradeReview


def instructor_decisions(session: Session, user_id: int | None = None) -> dict[int, bool]:
    """response id -> the instructor's decision, where a review overrode a provisional grade.

    The response log stays append-only; every reader of grades applies these decisions."""
    query = select(GradeReview.response_id, GradeReview.decided_correct).where(
        GradeReview.status == "decided", GradeReview.response_id.is_not(None)
    )
    if user_id is not None:
        query = query.where(GradeReview.user_id == user_id)
    return {
        int(rid): bool(ok) for rid, ok in session.execute(query).all() if rid is not None and ok is not None
    }

"""Grades as they count: the log's provisional grade unless an instructor decided otherwise."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session

from learnloop.store.models import GradeReview, Response


def counted_correct() -> ColumnElement[Any]:
    """An answer's grade as it counts, for a query made with :func:`with_decisions`."""
    return func.coalesce(GradeReview.decided_correct, Response.correct)


def with_decisions(query: Select[Any]) -> Select[Any]:
    """``query`` over the response log, joined to the instructors' decisions (an outer join on
    the reviews' unique response id) so that :func:`counted_correct` can be selected."""
    decided = and_(GradeReview.response_id == Response.id, GradeReview.status == "decided")
    return query.outerjoin(GradeReview, decided)


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

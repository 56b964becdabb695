"""Per-learner tallies behind the team report's readiness lists: answers in practice and
distinct items answered right, kept on one row per learner (``LearnerTally``).

They are exact, not estimates: :func:`count_answer` adds each answer in the answer's own
transaction (one statement, from :func:`services.mastery.apply_answer`), and
:func:`rebuild` counts them again from the append-only log with the instructors' decisions
applied, where mastery is rebuilt (``learnloop rebuild``, an instructor's decision, a fit).
Rebuilt equals live: an answer adds one practice answer when given in practice, and one right
item when it is counted right and no earlier answer of the learner to the same item was; a
decision that changes an earlier grade replays the learner, and this with it.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, delete, distinct, exists, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from learnloop.store.grades import counted_correct, with_decisions
from learnloop.store.models import GradeReview, LearnerTally, Response, User


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(
        cast(Table, LearnerTally.__table__)
    )


#: the statement :func:`count_answer` runs, per (dialect, counted right): built once (building
#: it costs more than running it)
_COUNTS: dict[tuple[str, bool], Any] = {}


def _count_statement(session: Session, correct: bool) -> Any:
    key = (session.get_bind().dialect.name, correct)
    statement = _COUNTS.get(key)
    if statement is not None:
        return statement
    responses = cast(Table, Response.__table__)
    reviews = cast(Table, GradeReview.__table__)
    tallies = cast(Table, LearnerTally.__table__)
    answer = responses.alias("answer")
    practice = case((answer.c.context == "practice", 1), else_=0)
    first_right: Any = literal(0)
    if correct:
        decided = and_(reviews.c.response_id == responses.c.id, reviews.c.status == "decided")
        right_before = (
            select(literal(1))
            .select_from(responses.outerjoin(reviews, decided))
            .where(
                responses.c.user_id == answer.c.user_id,
                responses.c.item_id == answer.c.item_id,
                responses.c.id < answer.c.id,
                func.coalesce(reviews.c.decided_correct, responses.c.correct).is_(True),
            )
        )
        first_right = case((exists(right_before), 0), else_=1)
    rows = select(answer.c.user_id, practice, first_right).where(answer.c.id == bindparam("response_id"))
    upsert = _insert(session).from_select(["user_id", "practice_answers", "right_items"], rows)
    statement = upsert.on_conflict_do_update(
        index_elements=[tallies.c.user_id],
        set_={
            "practice_answers": tallies.c.practice_answers + upsert.excluded.practice_answers,
            "right_items": tallies.c.right_items + upsert.excluded.right_items,
        },
    )
    _COUNTS[key] = statement
    return statement


def count_answer(session: Session, response_id: int, correct: bool) -> None:
    """Add the logged answer ``response_id`` (counted ``correct``) to its learner's tally: one
    practice answer if given in practice, one right item if right and no earlier answer of the
    learner to the item was counted right."""
    session.execute(_count_statement(session, bool(correct)), {"response_id": response_id})


def counted(user_id: int | None = None, org_id: int | None = None) -> Any:
    """The tallies counted from the log (one learner's, one organisation's or everyone's): user
    id, practice answers, distinct items answered right, with the decisions applied."""
    columns: Any = select(
        Response.user_id,
        func.sum(case((Response.context == "practice", 1), else_=0)),
        func.count(distinct(case((counted_correct().is_(True), Response.item_id)))),
    )
    query = with_decisions(columns).group_by(Response.user_id)
    if user_id is not None:
        query = query.where(Response.user_id == user_id)
    elif org_id is not None:
        query = query.where(Response.org_id == org_id)
    return query


def rebuild(session: Session, user_id: int | None = None, org_id: int | None = None) -> None:
    """Count the tallies again from the log (one learner's, one organisation's or everyone's)."""
    wipe = delete(LearnerTally)
    if user_id is not None:
        wipe = wipe.where(LearnerTally.user_id == user_id)
    elif org_id is not None:
        wipe = wipe.where(LearnerTally.user_id.in_(select(User.id).where(User.org_id == org_id)))
    session.execute(wipe)
    session.execute(
        _insert(session).from_select(["user_id", "practice_answers", "right_items"], counted(user_id, org_id))
    )


def snapshot(session: Session) -> dict[int, tuple[int, int]]:
    """Every stored tally, for checking a rebuild equals the live state."""
    rows = session.execute(
        select(LearnerTally.user_id, LearnerTally.practice_answers, LearnerTally.right_items)
    )
    return {int(u): (int(p), int(r)) for u, p, r in rows}
